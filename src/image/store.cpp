#include "image/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "image/reference.hpp"
#include "image/fsutil.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"

namespace vitro::image {

using nlohmann::json;

std::string default_root() {
    const char* env = std::getenv("VITRO_ROOT");
    return env && *env ? std::string(env) : std::string("/var/lib/vitro");
}

namespace {
// Serialises index.json updates between processes (flock on <root>/index.lock).
template <typename F>
auto with_index_lock(const std::string& root, F&& f) {
    UniqueFd lock = lock_file(root + "/index.lock");
    return f();  // the lock goes with the fd
}

bool same_file(const struct stat& a, const struct stat& b) { return a.st_ino == b.st_ino && a.st_dev == b.st_dev; }

// Takes the writer's lock on a temp entry just made at `path` (fd open on
// it). False when a sweep got there first: it has removed, or will remove,
// the entry, and the caller makes another. Any other failure is an error.
bool claim_temp(int fd, const std::string& path) {
    if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) return false;
        int err = errno;
        ::remove(path.c_str());  // ours, and empty: no sweep holds it
        throw_errno(err, "lock", path);
    }
    struct stat mine, now;
    return ::fstat(fd, &mine) == 0 && ::lstat(path.c_str(), &now) == 0 && same_file(mine, now);
}

// Makes and claims a temp entry with `make` (mkostemp or mkdtemp + open);
// a few tries, as each lost race means a sweep is running right then.
template <typename Make>
UniqueFd make_claimed(const std::string& tmp_dir, const std::string& name, std::string& path, Make&& make) {
    for (int attempt = 0; attempt < 8; ++attempt) {
        path = tmp_dir + "/" + name + "-XXXXXX";
        UniqueFd fd = make(path);
        if (claim_temp(fd.get(), path)) return fd;
    }
    throw Error(EAGAIN, "create a temporary file in " + tmp_dir + ": removed by a concurrent clean-up, 8 times");
}
}  // namespace

// --- BlobWriter ---------------------------------------------------------------

constexpr int64_t kWritebackStep = 4 << 20;

BlobWriter::BlobWriter(const Store& store, std::string tmp_path, UniqueFd fd)
    : store_(&store), tmp_(std::move(tmp_path)), fd_(std::move(fd)) {}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : store_(o.store_), tmp_(std::move(o.tmp_)), fd_(std::move(o.fd_)), hash_(std::move(o.hash_)),
      digest_(std::move(o.digest_)), size_(o.size_), flushed_(o.flushed_), synced_(o.synced_), done_(o.done_) {
    o.done_ = true;
}

BlobWriter::~BlobWriter() {
    if (!done_ && !tmp_.empty()) ::unlink(tmp_.c_str());  // before fd_ closes: the lock covers it
}

void BlobWriter::write(const void* data, size_t len) {
    if (done_) throw Error("blob writer: write after commit");
    if (digest_) throw Error("blob writer: write after verify");
    hash_.update(data, len);
    write_all(fd_.get(), std::string_view(static_cast<const char*>(data), len), tmp_);
    size_ += static_cast<int64_t>(len);
    // Starts writing the blob to disk while more arrives, so that the fsync in
    // verify() or commit() finds little left to wait for: for a 50 MiB layer, ~80 ms less
    // between its last byte and the blob landing. Only a hint: errors are
    // left for fsync to report.
    if (size_ - flushed_ >= kWritebackStep) {
        ::sync_file_range(fd_.get(), flushed_, size_ - flushed_, SYNC_FILE_RANGE_WRITE);
        flushed_ = size_;
    }
}

const std::string& BlobWriter::digest() {
    if (!digest_) digest_ = hash_.digest();
    return *digest_;
}

void BlobWriter::check_and_sync(std::string_view expected, int64_t expected_size) {
    const std::string& got = digest();
    if (expected_size >= 0 && size_ != expected_size)
        throw Error(EINVAL, "blob " + std::string(expected.empty() ? got : std::string(expected)) +
                                ": size mismatch: expected " + std::to_string(expected_size) + " bytes, got " +
                                std::to_string(size_));
    if (!expected.empty() && got != expected)
        throw Error(EINVAL, "blob " + std::string(expected) + ": digest mismatch: content hashes to " + got);
    if (synced_) return;
    if (::fsync(fd_.get()) < 0) throw_errno("fsync", tmp_);
    synced_ = true;  // fd_ stays open until the blob is in place: it holds the writer's lock
}

void BlobWriter::verify(std::string_view expected, int64_t expected_size) {
    if (done_) throw Error("blob writer: verify after commit");
    check_and_sync(expected, expected_size);
}

std::string BlobWriter::commit(std::string_view expected, int64_t expected_size, bool* added) {
    if (added) *added = false;
    if (done_) throw Error("blob writer: committed twice");
    done_ = true;  // from here on, every path either renames or unlinks the temp file
    try {
        check_and_sync(expected, expected_size);
        std::string got = digest();
        std::string dest = store_->blob_path(got);
        if (store_->has_blob(got)) {  // same content already there: keep it
            ::unlink(tmp_.c_str());
            return got;
        }
        if (added) *added = true;
        if (::rename(tmp_.c_str(), dest.c_str()) < 0) throw_errno("rename", tmp_ + " to " + dest);
        fd_.reset();
        return got;
    } catch (...) {
        ::unlink(tmp_.c_str());
        throw;
    }
}

// --- Store --------------------------------------------------------------------

Store::Store(std::string root) : root_(std::move(root)) {
    while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
    make_dirs(root_ + "/blobs/sha256", 0755);
    make_dirs(tmp_dir(), 0700);
    make_dirs(layers_dir(), 0711);  // traversable: overlay lower dirs are reached through it
    if (!path_exists(root_ + "/oci-layout"))
        write_file_atomic(root_ + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    if (!path_exists(root_ + "/index.json")) {
        with_index_lock(root_, [&] {
            if (!path_exists(root_ + "/index.json"))
                write_file_atomic(root_ + "/index.json",
                                  json{{"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", json::array()}}
                                      .dump());
            return 0;
        });
    }
}

std::string Store::blob_path(std::string_view digest) const {
    return root_ + "/blobs/sha256/" + digest_hex(digest);
}

BlobWriter Store::begin_blob() const {
    std::string path;
    UniqueFd fd = make_claimed(tmp_dir(), "blob", path, [&](std::string& tmpl) {
        UniqueFd f(::mkostemp(tmpl.data(), O_CLOEXEC));
        if (!f) throw_errno("create temporary blob in", tmp_dir());
        ::fchmod(f.get(), 0644);
        return f;
    });
    return BlobWriter(*this, path, std::move(fd));
}

std::string Store::make_temp_dir(const std::string& prefix, UniqueFd* owner) const {
    std::string path;
    *owner = make_claimed(tmp_dir(), prefix, path, [&](std::string& tmpl) {
        if (!::mkdtemp(tmpl.data())) throw_errno("create temporary directory in", tmp_dir());
        UniqueFd f(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!f) throw_errno("open", tmpl);
        return f;
    });
    return path;
}

TempSweep Store::remove_orphan_temps() const {
    TempSweep r;
    UniqueFd dir(::open(tmp_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return r;
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(tmp_dir(), ec)) names.push_back(e.path().filename().string());
    for (const std::string& name : names) {
        // The writer's lock free means the writer is gone: a live one holds it
        // from its entry's first moment (make_claimed) to its last.
        UniqueFd fd(::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) continue;
        struct stat st, now;
        if (::fstat(fd.get(), &st) < 0 || ::fstatat(dir.get(), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) < 0 ||
            !same_file(st, now))
            continue;
        uint64_t bytes = S_ISDIR(st.st_mode) ? disk_usage(tmp_dir() + "/" + name) : static_cast<uint64_t>(st.st_size);
        try {
            if (S_ISDIR(st.st_mode)) remove_tree_at(dir.get(), name);
            else if (::unlinkat(dir.get(), name.c_str(), 0) < 0) throw_errno("remove", tmp_dir() + "/" + name);
        } catch (const Error& e) {
            log::warn("remove leftover " + tmp_dir() + "/" + name + ": " + e.what());
            continue;
        }
        ++r.entries;
        r.bytes += bytes;
    }
    if (r.entries)
        log::info("removed " + std::to_string(r.entries) + " leftover temporary file(s) of killed writers from " +
                  tmp_dir() + " (" + std::to_string(r.bytes) + " bytes)");
    return r;
}

std::string Store::put_blob(int fd, std::string_view expected, int64_t expected_size) const {
    if (!expected.empty()) check_digest(expected, "expected blob digest");
    BlobWriter w = begin_blob();
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("read blob source");
        }
        if (n == 0) break;
        w.write(buf, static_cast<size_t>(n));
        if (expected_size >= 0 && w.size() > expected_size)
            throw Error(EINVAL, "blob " + std::string(expected) + ": larger than the expected " +
                                    std::to_string(expected_size) + " bytes");
    }
    return w.commit(expected, expected_size);
}

std::string Store::put_blob_file(const std::string& path, std::string_view expected, int64_t expected_size) const {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno("open", path);
    try {
        return put_blob(fd.get(), expected, expected_size);
    } catch (const Error& e) {
        throw e.wrap(path);
    }
}

std::string Store::put_blob_bytes(std::string_view data, std::string_view expected) const {
    if (!expected.empty()) check_digest(expected, "expected blob digest");
    BlobWriter w = begin_blob();
    w.write(data);
    return w.commit(expected);
}

bool Store::has_blob(std::string_view digest) const {
    if (!is_valid_digest(digest)) return false;
    struct stat st;
    return ::stat(blob_path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

UniqueFd Store::open_blob(std::string_view digest) const {
    std::string p = blob_path(digest);
    UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw_errno("open blob", digest);
    return fd;
}

std::string Store::read_blob(std::string_view digest, size_t max_size) const {
    UniqueFd fd = open_blob(digest);
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) throw_errno("stat blob", digest);
    if (static_cast<size_t>(st.st_size) > max_size)
        throw Error(EFBIG, "blob " + std::string(digest) + ": " + std::to_string(st.st_size) +
                               " bytes, more than the " + std::to_string(max_size) + " allowed here");
    std::string data = read_fd(fd.get());
    if (sha256_digest(data) != digest) throw Error(EIO, "blob " + std::string(digest) + ": corrupt in the store");
    return data;
}

namespace {
json read_index_json(const std::string& root) {
    std::string path = root + "/index.json";
    json j = json::parse(read_file(path), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(EINVAL, path + ": not a JSON object");
    if (!j.contains("manifests") || !j["manifests"].is_array()) j["manifests"] = json::array();
    return j;
}

std::string ref_name_of(const json& m) {
    if (!m.is_object()) return {};
    auto a = m.find("annotations");
    if (a == m.end() || !a->is_object()) return {};
    auto r = a->find(std::string(kRefNameAnnotation));
    return r != a->end() && r->is_string() ? r->get<std::string>() : std::string();
}
}  // namespace

void Store::tag(const std::string& name, const Descriptor& manifest) const { tag({TagEntry{name, manifest}}); }

void Store::tag(const std::vector<TagEntry>& tags) const {
    for (const auto& t : tags) {
        if (t.name.empty()) throw Error(EINVAL, "tag: empty image name");
        check_digest(t.manifest.digest, "tag " + t.name);
    }
    if (tags.empty()) return;
    with_index_lock(root_, [&] {
        json idx = read_index_json(root_);
        json manifests = std::move(idx["manifests"]);
        for (const auto& t : tags) {
            json keep = json::array();
            for (auto& m : manifests)
                if (ref_name_of(m) != t.name) keep.push_back(std::move(m));
            Descriptor d = t.manifest;
            d.platform.reset();
            d.annotations[std::string(kRefNameAnnotation)] = t.name;
            keep.push_back(to_json(d));
            manifests = std::move(keep);
        }
        idx["manifests"] = std::move(manifests);
        write_file_atomic(root_ + "/index.json", idx.dump(2) + "\n");
        return 0;
    });
}

bool Store::untag(const std::string& name) const {
    return with_index_lock(root_, [&] {
        json idx = read_index_json(root_);
        json keep = json::array();
        bool found = false;
        for (auto& m : idx["manifests"]) {
            if (ref_name_of(m) == name)
                found = true;
            else
                keep.push_back(m);
        }
        if (found) {
            idx["manifests"] = keep;
            write_file_atomic(root_ + "/index.json", idx.dump(2) + "\n");
        }
        return found;
    });
}

std::vector<TagEntry> Store::tags() const {
    json idx = read_index_json(root_);
    std::vector<TagEntry> out;
    for (auto& m : idx["manifests"]) {
        std::string name = ref_name_of(m);
        if (name.empty()) continue;
        out.push_back({name, parse_descriptor(m, root_ + "/index.json")});
    }
    return out;
}

std::optional<Descriptor> Store::resolve(const std::string& name) const {
    for (auto& t : tags())
        if (t.name == name) return t.manifest;
    return std::nullopt;
}

std::optional<std::string> Store::find_name(const std::string& name) const {
    if (auto tagged = find_tag_by_name(name)) return tagged;
    auto by_id = tags_by_id(name);
    if (by_id.empty()) return std::nullopt;
    return by_id.front();
}

std::string Store::image_id(const Descriptor& manifest) const {
    return parse_manifest(read_blob(manifest.digest), "image manifest " + manifest.digest).config.digest;
}

std::vector<std::string> Store::tags_by_id(const std::string& ref) const {
    std::string_view hex = ref;
    if (hex.substr(0, 7) == "sha256:") hex.remove_prefix(7);
    if (hex.empty() || hex.size() > 64 || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos)
        return {};
    std::map<std::string, std::vector<std::string>> matches;  // image ID -> its tags
    for (const auto& t : tags()) {
        std::string id;
        try {
            id = image_id(t.manifest);
        } catch (const Error& e) {
            log::warn("image " + t.name + ": no ID (" + std::string(e.what()) + "); not matched by ID");
            continue;
        }
        if (std::string_view(id).substr(id.find(':') + 1, hex.size()) == hex) matches[id].push_back(t.name);
    }
    if (matches.size() > 1) {
        std::string ids;
        for (const auto& [id, names] : matches) ids += (ids.empty() ? "" : ", ") + id.substr(id.find(':') + 1, 12);
        throw Error(EINVAL, "image ID prefix \"" + ref + "\" is ambiguous: it begins " +
                                std::to_string(matches.size()) + " images' IDs (" + ids + "); give more of the ID");
    }
    return matches.empty() ? std::vector<std::string>{} : matches.begin()->second;
}

std::optional<std::string> Store::find_tag_by_name(const std::string& name) const {
    std::vector<std::string> candidates = {name, normalize_local_name(name)};
    // A short name ("busybox") may be a local image, as podman resolves it.
    if (name.find('/') == std::string::npos) candidates.push_back("localhost/" + normalize_local_name(name));
    try {
        candidates.push_back(parse_reference(name).str());  // "busybox" -> docker.io/library/busybox:latest
    } catch (const Error&) {
        // not a registry reference: only the local forms
    }
    auto all = tags();
    for (const auto& c : candidates)
        for (const auto& t : all)
            if (t.name == c) return c;
    return std::nullopt;
}

}  // namespace vitro::image
