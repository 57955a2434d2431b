#include "engine/volumes.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>

#include "engine/engine.hpp"
#include "engine/names.hpp"
#include "linux/mounts.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace vitro::engine {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// In a new volume's directory until the copy-up claims it.
constexpr const char* kVolumeCopyUpMark = "/copy-up";
// The volume's metadata (labels, options, creation time).
constexpr const char* kVolumeMetaFile = "/volume.json";
constexpr const char* kVolumeNamePattern = "[a-zA-Z0-9][a-zA-Z0-9_.-]*";

void check_volume_name(const std::string& name) {
    if (!valid_name(name))
        throw Error(EINVAL, "invalid volume name \"" + name + "\": names must match " + kVolumeNamePattern +
                                " (at most 253 characters)");
}

// -o KEY[=VALUE] of podman's local driver: what vitro does (uid, gid,
// copy, nocopy) goes into `out`; the rest is refused by name.
void parse_volume_options(const std::vector<std::string>& opts, std::map<std::string, std::string>& out) {
    for (const auto& o : opts) {
        auto eq = o.find('=');
        std::string key = o.substr(0, eq), value = eq == std::string::npos ? "" : o.substr(eq + 1);
        std::transform(key.begin(), key.end(), key.begin(), [](unsigned char ch) { return std::tolower(ch); });
        if (key == "uid" || key == "gid") {
            uint64_t id = 0;
            if (!parse_u64(value, id) || id > 0xfffffffe)
                throw Error(EINVAL, "invalid volume option \"" + o + "\": " + key + " must be a number");
        } else if (key == "copy" || key == "nocopy") {
            if (eq != std::string::npos) throw Error(EINVAL, "invalid volume option \"" + o + "\": " + key + " takes no value");
        } else if (key == "type" || key == "device" || key == "o" || key == "size" || key == "inodes" ||
                   key == "noquota" || key == "timeout") {
            throw Error(EINVAL, "volume option \"" + o + "\" is not supported by vitro's local driver (it takes "
                                "uid=N, gid=N, copy and nocopy)");
        } else {
            throw Error(EINVAL, "unrecognized volume option \"" + o + "\" for the local driver (known: uid=N, gid=N, "
                                "copy, nocopy)");
        }
        out[key] = value;
    }
    if (out.count("copy") && out.count("nocopy")) throw Error(EINVAL, "volume options copy and nocopy exclude each other");
}

std::map<std::string, std::string> string_map(const json& j) {
    std::map<std::string, std::string> out;
    if (j.is_object())
        for (auto it = j.begin(); it != j.end(); ++it)
            if (it->is_string()) out[it.key()] = it->get<std::string>();
    return out;
}

}  // namespace

json to_json(const VolumeInfo& v) {
    return {{"Name", v.name},
            {"Driver", v.driver},
            {"Mountpoint", v.mountpoint},
            {"CreatedAt", v.created_at},
            {"Labels", v.labels},
            {"Scope", "local"},
            {"Options", v.options},
            {"MountCount", 0},
            {"NeedsCopyUp", v.needs_copy_up},
            {"Anonymous", false}};
}

VolumeStore::VolumeStore(const std::string& root) : dir_(root + "/volumes") {}

UniqueFd VolumeStore::lock(bool shared) const {
    make_dirs(dir_, 0755);
    // Beside the volumes, not among them.
    return lock_file(dir_ + ".lock", shared);
}

bool VolumeStore::exists(const std::string& name) const {
    struct stat st;
    return valid_name(name) && ::stat(dir(name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string VolumeStore::create(const VolumeCreateRequest& req) const {
    std::string name = req.name.empty() ? random_hex(32) : req.name;
    check_volume_name(name);
    std::map<std::string, std::string> options;
    parse_volume_options(req.options, options);
    if (exists(name)) {
        if (req.ignore_existing) return name;
        throw VolumeExistsError("volume with name " + name + " already exists");
    }
    make_dirs(dir_, 0755);
    // Names never start with '.': list() does not see this one (and a
    // prune removes it if this command dies before the rename).
    std::string tmp = dir_ + "/.new-" + random_hex(8);
    try {
        if (::mkdir(tmp.c_str(), 0755) < 0) throw_errno("mkdir", tmp);
        std::string data = tmp + "/_data";
        if (::mkdir(data.c_str(), 0755) < 0) throw_errno("mkdir", data);
        if (options.count("uid") || options.count("gid")) {
            uid_t uid = options.count("uid") ? static_cast<uid_t>(std::stoul(options["uid"])) : static_cast<uid_t>(-1);
            gid_t gid = options.count("gid") ? static_cast<gid_t>(std::stoul(options["gid"])) : static_cast<gid_t>(-1);
            if (::chown(data.c_str(), uid, gid) < 0) throw_errno("chown", data);
        }
        json meta = {{"Name", name},
                     {"Driver", "local"},
                     {"CreatedAt", rfc3339_now()},
                     {"Labels", req.labels},
                     {"Options", options}};
        write_file_atomic(tmp + kVolumeMetaFile, meta.dump(), 0644);
        if (!options.count("nocopy")) write_file_atomic(tmp + kVolumeCopyUpMark, "");
        if (::rename(tmp.c_str(), dir(name).c_str()) < 0) {
            if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("rename " + tmp + " to", dir(name));
            // Made by another meanwhile.
            fs::remove_all(tmp);
            if (req.ignore_existing) return name;
            throw VolumeExistsError("volume with name " + name + " already exists");
        }
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
    return name;
}

std::string VolumeStore::use(const std::string& name, const std::string& destination,
                             std::vector<VolumeCopyUp>& copy_ups) const {
    VolumeCreateRequest req;
    req.name = name;
    req.ignore_existing = true;
    create(req);
    // A volume from before volume.json: its data dir is made as it was then.
    make_dirs(data_dir(name), 0755);
    if (path_exists(dir(name) + kVolumeCopyUpMark)) copy_ups.push_back({dir(name), destination});
    return data_dir(name);
}

VolumeInfo VolumeStore::get(const std::string& name) const {
    if (!exists(name)) throw NotFoundError(ENOENT, "no volume with name \"" + name + "\" found");
    VolumeInfo v;
    v.name = name;
    v.mountpoint = data_dir(name);
    v.needs_copy_up = path_exists(dir(name) + kVolumeCopyUpMark);
    std::string meta_path = dir(name) + kVolumeMetaFile;
    if (path_exists(meta_path)) {
        try {
            json meta = json::parse(read_file(meta_path));
            v.created_at = meta.value("CreatedAt", "");
            v.labels = string_map(meta.value("Labels", json::object()));
            v.options = string_map(meta.value("Options", json::object()));
        } catch (const std::exception& e) {
            log::warn("volume " + name + ": " + meta_path + " is unreadable (" + e.what() + "); shown without labels");
        }
    }
    if (v.created_at.empty()) {  // made by a -v before volume.json: its directory's time
        struct stat st;
        if (::stat(dir(name).c_str(), &st) == 0) v.created_at = rfc3339(st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    }
    return v;
}

std::vector<VolumeInfo> VolumeStore::list() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
        std::string n = e.path().filename().string();
        if (valid_name(n) && e.is_directory(ec)) names.push_back(n);
    }
    if (ec && ec != std::errc::no_such_file_or_directory) throw Error(ec.value(), "list " + dir_ + ": " + ec.message());
    std::sort(names.begin(), names.end());
    std::vector<VolumeInfo> out;
    for (const auto& n : names) {
        try {
            out.push_back(get(n));
        } catch (const NotFoundError&) {  // removed meanwhile
        }
    }
    return out;
}

void VolumeStore::remove(const std::string& name) const {
    check_volume_name(name);
    // Renamed aside first: a removal cut short leaves no half volume under its name.
    std::string gone = dir_ + "/.gone-" + random_hex(8);
    if (::rename(dir(name).c_str(), gone.c_str()) < 0) {
        if (errno == ENOENT) throw NotFoundError(ENOENT, "no volume with name \"" + name + "\" found");
        throw_errno("rename " + dir(name) + " to", gone);
    }
    std::error_code ec;
    fs::remove_all(gone, ec);
    if (ec) log::warn("volume " + name + " removed, but " + gone + " is left: " + ec.message());
}

void VolumeStore::remove_leftovers() const {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
        std::string n = e.path().filename().string();
        if (n.rfind(".new-", 0) != 0 && n.rfind(".gone-", 0) != 0) continue;
        std::error_code rm_ec;
        fs::remove_all(e.path(), rm_ec);
        if (rm_ec) log::warn("cannot remove " + e.path().string() + " (left by a volume command cut short): " + rm_ec.message());
    }
}

// The path resolved inside the rootfs (an image's symlinks never lead out of
// it), and nothing in it followed.
void copy_up_volume(const std::string& rootfs, const VolumeCopyUp& v) {
    if (::unlink((v.volume_dir + kVolumeCopyUpMark).c_str()) < 0) return;
    std::string data = v.volume_dir + "/_data";
    std::error_code ec;
    if (!fs::is_empty(data, ec) && !ec) return;  // filled on the host before its first use: podman copies only into an empty one
    UniqueFd root(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open", rootfs);
    UniqueFd at = os::try_open_in_root(root.get(), v.destination, O_DIRECTORY);
    if (!at) return;  // nothing there in the image (or not a directory): nothing to copy
    UniqueFd from(::openat(at.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!from) throw_errno("open in the image", v.destination);
    UniqueFd to(::open(data.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!to) throw_errno("open", data);
    try {
        os::copy_dir_contents(from.get(), to.get());
        struct stat st;
        if (::fstat(from.get(), &st) == 0) {
            (void)!::fchown(to.get(), st.st_uid, st.st_gid);
            ::fchmod(to.get(), st.st_mode & 07777);
        }
    } catch (const Error& e) {
        throw e.wrap("filling volume " + v.volume_dir + " from the image's " + v.destination);
    }
}

std::vector<std::string> volumes_of(const ContainerRecord& c, const std::string& root) {
    if (c.config.contains("volumes")) return c.config.value("volumes", std::vector<std::string>{});
    std::vector<std::string> out;
    std::string spec_path = c.bundle + "/config.json";
    if (!path_exists(spec_path)) return out;
    const std::string prefix = root + "/volumes/", suffix = "/_data";
    try {
        json spec = json::parse(read_file(spec_path));
        for (const auto& m : spec.value("mounts", json::array())) {
            std::string src = m.value("source", "");
            if (src.size() <= prefix.size() + suffix.size() || src.rfind(prefix, 0) != 0 ||
                src.compare(src.size() - suffix.size(), suffix.size(), suffix) != 0)
                continue;
            std::string name = src.substr(prefix.size(), src.size() - prefix.size() - suffix.size());
            if (valid_name(name)) out.push_back(name);
        }
    } catch (const std::exception& e) {
        log::warn("container " + c.name + ": " + spec_path + " is unreadable (" + e.what() +
                  "); the volumes it uses are unknown");
    }
    return out;
}

std::map<std::string, std::vector<ContainerRecord>> volume_users(const std::vector<ContainerRecord>& cs,
                                                                 const std::string& root) {
    std::map<std::string, std::vector<ContainerRecord>> out;
    for (const auto& c : cs)
        for (const auto& v : volumes_of(c, root)) {
            auto& users = out[v];
            if (users.empty() || users.back().id != c.id) users.push_back(c);
        }
    return out;
}

// ---- Engine ------------------------------------------------------------------------

std::string Engine::volume_create(const VolumeCreateRequest& req) {
    VolumeStore store(opts_.root);
    UniqueFd held = store.lock(true);
    return store.create(req);
}

std::vector<VolumeInfo> Engine::volume_list() {
    VolumeStore store(opts_.root);
    auto users = volume_users(list(), opts_.root);
    auto vols = store.list();
    for (auto& v : vols)
        if (auto it = users.find(v.name); it != users.end())
            for (const auto& c : it->second) v.users.push_back(c.name);
    return vols;
}

VolumeInfo Engine::volume_inspect(const std::string& name) {
    VolumeStore store(opts_.root);
    VolumeInfo v = store.get(name);
    auto users = volume_users(list(), opts_.root);
    if (auto it = users.find(name); it != users.end())
        for (const auto& c : it->second) v.users.push_back(c.name);
    return v;
}

void Engine::volume_remove(const std::string& name, bool force) {
    repair();
    VolumeStore store(opts_.root);
    // No container is recorded on it while it is checked and removed.
    UniqueFd held = store.lock(false);
    if (!store.exists(name)) throw NotFoundError(ENOENT, "no volume with name \"" + name + "\" found");
    auto users = volume_users(state().list_containers(), opts_.root);
    if (auto it = users.find(name); it != users.end()) {
        if (!force) {
            std::vector<std::string> ids;
            for (const auto& c : it->second) ids.push_back(c.id);
            throw VolumeInUseError("volume " + name + " is being used by the following container(s): " + join(ids, ", ") +
                                   " (remove them first, or use -f)");
        }
        // podman's -f: the containers go first (a pod's infra has no volumes).
        for (const auto& c : it->second) remove_container(c, true);
    }
    store.remove(name);
}

std::vector<std::string> Engine::volume_prune(const std::function<bool(const VolumeInfo&)>& selected) {
    repair();
    VolumeStore store(opts_.root);
    UniqueFd held = store.lock(false);
    auto users = volume_users(state().list_containers(), opts_.root);
    std::vector<std::string> removed;
    for (const auto& v : store.list()) {
        if (users.count(v.name) || (selected && !selected(v))) continue;
        store.remove(v.name);
        removed.push_back(v.name);
    }
    store.remove_leftovers();
    return removed;
}

}  // namespace vitro::engine
