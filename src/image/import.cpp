#include "image/import.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "image/digest.hpp"
#include "image/fsutil.hpp"
#include "image/reference.hpp"
#include "image/store.hpp"
#include "image/unpack.hpp"
#include "linux/mounts.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace vitro::image {

using nlohmann::json;

namespace {

// Blobs this import added: removed again unless the import succeeds.
class AddedBlobs {
public:
    explicit AddedBlobs(const Store& s) : store_(s) {}
    ~AddedBlobs() {
        if (committed_) return;
        for (auto& d : added_) ::unlink(store_.blob_path(d).c_str());
    }
    void add(const std::string& d) { added_.push_back(d); }
    void commit() { committed_ = true; }

private:
    const Store& store_;
    std::vector<std::string> added_;
    bool committed_ = false;
};

// An OCI layout directory, held open: its entries are opened relative to it.
UniqueFd open_layout(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw_errno("open OCI layout", dir);
    return fd;
}

const char* file_type_name(mode_t mode) {
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    return "a socket";
}

// Opens the layout's entry `rel` ("index.json", "blobs/sha256/<hex>") for
// reading, its stat in *st. The layout may be an extracted archive, which
// makes the symlinks and FIFOs it says: the entry is resolved confined to the
// layout, must itself be no symlink (one to a host file would be read) and a
// regular file (a FIFO would block the read). Opened O_PATH first, so that
// nothing else is ever opened for reading.
UniqueFd open_layout_file(int layout, const std::string& rel, struct stat* st) {
    UniqueFd path_fd = os::try_open_in_root(layout, rel, O_NOFOLLOW);
    if (!path_fd) throw_errno("open", rel);
    if (::fstat(path_fd.get(), st) < 0) throw_errno("stat", rel);
    if (!S_ISREG(st->st_mode)) throw Error(EINVAL, rel + ": " + file_type_name(st->st_mode) + ", not a regular file");
    UniqueFd fd(::open(os::fd_path(path_fd.get()).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) throw_errno("reopen", rel);
    return fd;
}

// Copies blob `d` from an OCI layout into the store, verifying digest and size.
void copy_layout_blob(const Store& store, int layout, const Descriptor& d, AddedBlobs& added) {
    if (store.has_blob(d.digest)) return;
    std::string src = "blobs/sha256/" + digest_hex(d.digest);
    struct stat st;
    UniqueFd fd = open_layout_file(layout, src, &st);
    BlobWriter w = store.begin_blob();
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("read", src);
        }
        if (n == 0) break;
        w.write(buf, static_cast<size_t>(n));
        if (w.size() > d.size) throw Error(EINVAL, src + ": larger than the " + std::to_string(d.size) + " bytes expected");
    }
    bool is_new = false;
    try {
        w.commit(d.digest, d.size, &is_new);
    } catch (const Error& e) {
        throw e.wrap(src);
    }
    if (is_new) added.add(d.digest);
}

struct ArchiveDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

std::string aerr(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

ArchivePtr open_tarball(const std::string& path) {
    ArchivePtr a(archive_read_new());
    if (!a) throw Error(ENOMEM, "archive_read_new");
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
        throw Error(EINVAL, path + ": " + aerr(a.get()));
    return a;
}

// The data of the archive's current entry, `name` (manifest.json, index.json):
// metadata, so at most 16 MiB.
std::string read_small_entry(archive* a, archive_entry* e, const std::string& name) {
    constexpr int64_t kMax = 16 << 20;
    if (archive_entry_size(e) > kMax) throw Error(EFBIG, name + ": too large");
    std::string text(static_cast<size_t>(archive_entry_size(e)), '\0');
    la_ssize_t got = archive_read_data(a, text.data(), text.size());
    if (got != static_cast<la_ssize_t>(text.size())) throw Error(EINVAL, name + ": short read: " + aerr(a));
    return text;
}

// "./a//b/" -> "a/b"; ".." is kept (and then simply never matches a wanted name).
std::string normalize(std::string_view p) {
    std::string out;
    while (!p.empty()) {
        size_t slash = p.find('/');
        std::string_view c = p.substr(0, slash);
        if (!c.empty() && c != ".") out += (out.empty() ? "" : "/") + std::string(c);
        if (slash == std::string_view::npos) break;
        p.remove_prefix(slash + 1);
    }
    return out;
}

// A symlink's target, taken relative to the link's directory, as an archive name.
std::string resolve_link(const std::string& link, const std::string& target) {
    if (!target.empty() && target[0] == '/') return normalize(target);
    size_t slash = link.rfind('/');
    std::string joined = (slash == std::string::npos ? std::string() : link.substr(0, slash + 1)) + target;
    std::vector<std::string> parts;
    std::string_view p = joined;
    while (!p.empty()) {
        size_t s = p.find('/');
        std::string c(p.substr(0, s));
        if (c == "..") {
            if (!parts.empty()) parts.pop_back();
        } else if (!c.empty() && c != ".") {
            parts.push_back(c);
        }
        if (s == std::string_view::npos) break;
        p.remove_prefix(s + 1);
    }
    std::string out;
    for (auto& c : parts) out += (out.empty() ? "" : "/") + c;
    return out;
}

std::string layer_media_type(const Store& store, const std::string& digest) {
    UniqueFd fd = store.open_blob(digest);
    unsigned char m[4] = {};
    ssize_t n = ::pread(fd.get(), m, sizeof m, 0);
    if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) return std::string(media::kOciLayerGzip);
    if (n == 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) return std::string(media::kOciLayerZstd);
    return std::string(media::kOciLayer);
}

// The digest of a layer's decompressed stream.
std::string diff_id_of(const Store& store, const std::string& digest, const std::string& media_type) {
    if (media_type == media::kOciLayer) return digest;
    UniqueFd fd = store.open_blob(digest);
    ArchivePtr a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_raw(a.get());
    archive_entry* e;
    if (archive_read_open_fd(a.get(), fd.get(), 1 << 16) != ARCHIVE_OK || archive_read_next_header(a.get(), &e) != ARCHIVE_OK)
        throw Error(EINVAL, "layer " + digest + ": cannot decompress: " + aerr(a.get()));
    Sha256 h;
    char buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buf, sizeof buf)) > 0) h.update(buf, static_cast<size_t>(n));
    if (n < 0) throw Error(EINVAL, "layer " + digest + ": " + aerr(a.get()));
    return h.digest();
}

struct DockerImage {
    std::string config;
    std::vector<std::string> repo_tags, layers;
};

std::vector<DockerImage> parse_docker_manifest(std::string_view text, const std::string& what) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array() || j.empty()) throw Error(EINVAL, what + ": expected a non-empty JSON array");
    std::vector<DockerImage> out;
    for (size_t i = 0; i < j.size(); ++i) {
        std::string path = "[" + std::to_string(i) + "]";
        const json& m = j[i];
        if (!m.is_object()) throw Error(EINVAL, what + ": field " + path + ": expected an object");
        DockerImage img;
        auto cfg = m.find("Config");
        if (cfg == m.end() || !cfg->is_string()) throw Error(EINVAL, what + ": field " + path + ".Config: expected a string");
        img.config = normalize(cfg->get<std::string>());
        for (const char* key : {"RepoTags", "Layers"}) {
            auto it = m.find(key);
            if (it == m.end() || it->is_null()) continue;
            if (!it->is_array()) throw Error(EINVAL, what + ": field " + path + "." + key + ": expected an array");
            for (size_t k = 0; k < it->size(); ++k) {
                if (!(*it)[k].is_string())
                    throw Error(EINVAL, what + ": field " + path + "." + key + "[" + std::to_string(k) + "]: expected a string");
                std::string v = (*it)[k].get<std::string>();
                (std::string(key) == "Layers" ? img.layers : img.repo_tags).push_back(std::string(key) == "Layers" ? normalize(v) : v);
            }
        }
        out.push_back(std::move(img));
    }
    return out;
}

}  // namespace

namespace {

// Copies one index entry's image into the store (an index narrowed to
// linux/amd64, one level deep) and returns its manifest's descriptor.
Descriptor copy_layout_image(const Store& store, int layout, Descriptor desc, AddedBlobs& added) {
    if (is_index_media_type(desc.media_type)) {
        copy_layout_blob(store, layout, desc, added);
        Index inner = parse_index(store.read_blob(desc.digest), "image index " + desc.digest);
        desc = select_platform(inner);
    }
    copy_layout_blob(store, layout, desc, added);
    Manifest m = parse_manifest(store.read_blob(desc.digest), "image manifest " + desc.digest);
    copy_layout_blob(store, layout, m.config, added);
    ImageConfig cfg = parse_config(store.read_blob(m.config.digest), "image config " + m.config.digest);
    if (cfg.diff_ids.size() != m.layers.size())
        throw Error(EINVAL, "image config " + m.config.digest + ": " + std::to_string(cfg.diff_ids.size()) +
                                " diff_ids for " + std::to_string(m.layers.size()) + " layers");
    for (auto& l : m.layers) copy_layout_blob(store, layout, l, added);
    if (desc.media_type.empty()) desc.media_type = m.media_type.empty() ? std::string(media::kOciManifest) : m.media_type;
    desc.platform.reset();
    desc.annotations.clear();
    return desc;
}

Index read_layout_index(int layout) {
    struct stat st;
    UniqueFd fd = open_layout_file(layout, "index.json", &st);
    if (st.st_size > (16 << 20)) throw Error(EFBIG, "index.json: too large");
    return parse_index(read_fd(fd.get()), "index.json");
}

// A temporary directory under the store's tmp/, removed with everything in
// it; locked while it lives (Store::make_temp_dir), so that only a killed
// load leaves it for remove_orphan_temps().
class TempDir {
public:
    TempDir(const Store& store, const char* prefix) : path_(store.make_temp_dir(prefix, &lock_)) {}
    ~TempDir() {
        try {
            remove_tree(path_);
        } catch (...) {
            // A destructor must not throw: a directory left behind is removed by remove_orphan_temps()
        }
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

private:
    UniqueFd lock_;  // declared first: released after the tree is gone
    std::string path_;
};

// An oci-archive extracted (hostile-path-safe) into a temp dir under the store.
std::string extract_oci_archive(const std::string& tarball, const TempDir& tmp) {
    UniqueFd fd(::open(tarball.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno("open", tarball);
    try {
        unpack_layer(fd.get(), tmp.path() + "/layout");
    } catch (const Error& e) {
        throw e.wrap("extract oci-archive " + tarball);
    }
    return tmp.path() + "/layout";
}

// Every named entry of the layout at dir into the store (load_oci_layout).
std::vector<ImportedImage> load_layout(const Store& store, const std::string& dir, const std::string& name) {
    UniqueFd layout = open_layout(dir);
    Index index = read_layout_index(layout.get());
    if (index.manifests.empty()) throw Error(EINVAL, "the index lists no image");
    if (!name.empty() && index.manifests.size() != 1)
        throw Error(EINVAL, "a name was given but the index lists " + std::to_string(index.manifests.size()) +
                                " images");
    AddedBlobs added(store);
    std::vector<ImportedImage> out;
    for (const auto& d : index.manifests) {
        std::string tag_name = !name.empty() ? name : oci_index_name(d.annotations);
        if (tag_name.empty()) {
            if (index.manifests.size() == 1)
                throw Error(EINVAL, "the index names no image (no " + std::string(kContainerdImageNameAnnotation) +
                                        " or " + std::string(kRefNameAnnotation) + "): give one with --name");
            log::warn("load: index entry " + d.digest + " has no name: not loaded");
            continue;
        }
        out.push_back({tag_name, copy_layout_image(store, layout.get(), d, added)});
    }
    if (out.empty()) throw Error(EINVAL, "no entry of the index has a name: give one with --name");
    std::vector<TagEntry> tags;
    for (const auto& img : out) tags.push_back({img.name, img.manifest});
    store.tag(tags);
    added.commit();
    return out;
}

}  // namespace

std::string oci_index_name(const std::map<std::string, std::string>& annotations) {
    auto get = [&](std::string_view key) {
        auto it = annotations.find(std::string(key));
        return it == annotations.end() ? std::string() : it->second;
    };
    std::string containerd = get(kContainerdImageNameAnnotation);
    std::string ref = get(kRefNameAnnotation);
    const std::string& chosen = !containerd.empty() ? containerd : ref;
    if (chosen.empty()) return {};
    try {
        // A bare tag in ref.name ("1") is a repository name to podman: localhost/1:latest.
        return normalize_image_name(chosen);
    } catch (const Error& e) {
        throw Error(EINVAL, std::string(!containerd.empty() ? kContainerdImageNameAnnotation : kRefNameAnnotation) +
                                " \"" + chosen + "\": not an image name (" + e.what() + "); give one with --name");
    }
}

ImportedImage import_oci_layout(const Store& store, const std::string& dir, const std::string& ref,
                                const std::string& name) {
    try {
        UniqueFd layout = open_layout(dir);
        Index index = read_layout_index(layout.get());
        const Descriptor* chosen = nullptr;
        if (ref.empty()) {
            if (index.manifests.size() != 1)
                throw Error(EINVAL, "no reference given and the layout holds " + std::to_string(index.manifests.size()) +
                                        " manifests");
            chosen = &index.manifests[0];
        } else {
            for (auto& d : index.manifests) {
                auto it = d.annotations.find(std::string(kRefNameAnnotation));
                if (it != d.annotations.end() && it->second == ref) chosen = &d;
            }
            if (!chosen) throw Error(ENOENT, "no image tagged \"" + ref + "\"");
        }
        std::string tag_name = !name.empty() ? name : !ref.empty() ? ref : oci_index_name(chosen->annotations);
        if (tag_name.empty()) throw Error(EINVAL, "no name to tag the image with (give one with --name)");
        AddedBlobs added(store);
        ImportedImage out{tag_name, copy_layout_image(store, layout.get(), *chosen, added)};
        store.tag(out.name, out.manifest);
        added.commit();
        return out;
    } catch (const Error& e) {
        throw e.wrap("import OCI layout " + dir);
    }
}

std::vector<ImportedImage> load_oci_layout(const Store& store, const std::string& dir, const std::string& name) {
    try {
        return load_layout(store, dir, name);
    } catch (const Error& e) {
        throw e.wrap("load OCI layout " + dir);
    }
}

ImportedImage import_oci_archive(const Store& store, const std::string& tarball, const std::string& ref,
                                 const std::string& name) {
    TempDir tmp(store, "oci-archive");
    return import_oci_layout(store, extract_oci_archive(tarball, tmp), ref, name);
}

std::vector<ImportedImage> load_oci_archive(const Store& store, const std::string& tarball, const std::string& name) {
    TempDir tmp(store, "oci-archive");
    std::string dir = extract_oci_archive(tarball, tmp);
    try {
        return load_layout(store, dir, name);
    } catch (const Error& e) {
        throw e.wrap("load oci-archive " + tarball);
    }
}

StoredImage load_image(const Store& store, const std::string& name) {
    auto d = store.resolve(name);
    if (!d) throw Error(ENOENT, "image " + name + ": not in the store");
    try {
        StoredImage img{*d, parse_manifest(store.read_blob(d->digest), "image manifest " + d->digest), {}};
        img.config = parse_config(store.read_blob(img.manifest.config.digest), "image config " + img.manifest.config.digest);
        if (img.config.diff_ids.size() != img.manifest.layers.size())
            throw Error(EINVAL, "image config " + img.manifest.config.digest + ": " +
                                    std::to_string(img.config.diff_ids.size()) + " diff_ids for " +
                                    std::to_string(img.manifest.layers.size()) + " layers");
        return img;
    } catch (const Error& e) {
        throw e.wrap("image " + name);
    }
}

std::vector<ImportedImage> import_docker_archive(const Store& store, const std::string& tarball,
                                                 const std::string& name, bool require_names) {
    try {
        // Pass 1: manifest.json and the symlinks (newer docker links duplicate layers).
        std::string manifest_text;
        bool have_manifest = false;
        std::map<std::string, std::string> links;
        {
            ArchivePtr a = open_tarball(tarball);
            archive_entry* e;
            int r;
            while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                const char* p = archive_entry_pathname(e);
                if (!p) continue;
                std::string n = normalize(p);
                if (archive_entry_filetype(e) == AE_IFLNK && archive_entry_symlink(e)) {
                    links[n] = resolve_link(n, archive_entry_symlink(e));
                } else if (const char* hl = archive_entry_hardlink(e)) {
                    links[n] = normalize(hl);
                } else if (n == "manifest.json" && archive_entry_filetype(e) == AE_IFREG) {
                    manifest_text = read_small_entry(a.get(), e, n);
                    have_manifest = true;
                }
            }
            if (r != ARCHIVE_EOF) throw Error(EINVAL, aerr(a.get()));
        }
        if (!have_manifest) throw Error(ENOENT, "no manifest.json: not a docker-archive");
        std::vector<DockerImage> images = parse_docker_manifest(manifest_text, "manifest.json");
        if (!name.empty() && images.size() != 1)
            throw Error(EINVAL, "a name was given but the archive holds " + std::to_string(images.size()) + " images");
        if (require_names && name.empty())
            for (size_t i = 0; i < images.size(); ++i)
                if (images[i].repo_tags.empty())
                    throw Error(EINVAL, "manifest.json: image [" + std::to_string(i) +
                                            "] has no RepoTags: give it a name with --name");

        auto resolve = [&](std::string n) {
            for (int hops = 0; hops < 16; ++hops) {
                auto it = links.find(n);
                if (it == links.end()) return n;
                n = it->second;
            }
            throw Error(ELOOP, "archive entry " + n + ": too many links");
        };
        std::set<std::string> wanted;
        for (auto& img : images) {
            img.config = resolve(img.config);
            wanted.insert(img.config);
            for (auto& l : img.layers) {
                l = resolve(l);
                wanted.insert(l);
            }
        }

        // Pass 2: stream each wanted file into the store.
        AddedBlobs added(store);
        std::map<std::string, std::pair<std::string, int64_t>> blobs;  // archive name -> digest, size
        {
            ArchivePtr a = open_tarball(tarball);
            archive_entry* e;
            int r;
            char buf[1 << 16];
            while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                const char* p = archive_entry_pathname(e);
                if (!p || archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e)) continue;
                std::string n = normalize(p);
                if (!wanted.count(n) || blobs.count(n)) continue;
                BlobWriter w = store.begin_blob();
                la_ssize_t got;
                while ((got = archive_read_data(a.get(), buf, sizeof buf)) > 0) w.write(buf, static_cast<size_t>(got));
                if (got < 0) throw Error(EINVAL, n + ": " + aerr(a.get()));
                bool is_new = false;
                int64_t size = w.size();
                std::string d = w.commit({}, -1, &is_new);
                if (is_new) added.add(d);
                blobs[n] = {d, size};
            }
            if (r != ARCHIVE_EOF) throw Error(EINVAL, aerr(a.get()));
        }
        auto blob_of = [&](const std::string& n) {
            auto it = blobs.find(n);
            if (it == blobs.end()) throw Error(ENOENT, "manifest.json names \"" + n + "\", which the archive lacks");
            return it->second;
        };

        std::vector<TagEntry> to_tag;
        std::vector<ImportedImage> out;
        for (auto& img : images) {
            auto [cfg_digest, cfg_size] = blob_of(img.config);
            ImageConfig cfg = parse_config(store.read_blob(cfg_digest), img.config);
            if (cfg.diff_ids.size() != img.layers.size())
                throw Error(EINVAL, img.config + ": " + std::to_string(cfg.diff_ids.size()) + " diff_ids for " +
                                        std::to_string(img.layers.size()) + " layers");
            Manifest m;
            m.media_type = media::kOciManifest;
            m.config = Descriptor{std::string(media::kOciConfig), cfg_digest, cfg_size, {}, {}};
            for (size_t i = 0; i < img.layers.size(); ++i) {
                auto [d, size] = blob_of(img.layers[i]);
                std::string mt = layer_media_type(store, d);
                std::string diff = diff_id_of(store, d, mt);
                if (diff != cfg.diff_ids[i])
                    throw Error(EINVAL, "layer " + img.layers[i] + ": content hashes to " + diff +
                                            ", the image config says " + cfg.diff_ids[i]);
                m.layers.push_back(Descriptor{mt, d, size, {}, {}});
            }
            std::string mtext = to_json(m).dump();
            bool is_new = false;
            BlobWriter w = store.begin_blob();
            w.write(mtext);
            std::string mdigest = w.commit({}, -1, &is_new);
            if (is_new) added.add(mdigest);
            Descriptor md{std::string(media::kOciManifest), mdigest, static_cast<int64_t>(mtext.size()), {}, {}};
            std::vector<std::string> names = name.empty() ? img.repo_tags : std::vector<std::string>{name};
            for (auto& t : names) to_tag.push_back({t, md});
            out.push_back({names.empty() ? std::string() : names.front(), md});
        }
        store.tag(to_tag);
        added.commit();
        return out;
    } catch (const Error& e) {
        throw e.wrap("import docker-archive " + tarball);
    }
}

namespace {
struct ArchiveKind {
    bool oci = false, docker = false;  // has index.json, manifest.json
    std::string index;                 // index.json's text
};

// Which metadata files the archive has at its top level. Reads only as far
// as it must: a compressed archive is decompressed on the way, so the scan
// stops once both were seen.
ArchiveKind archive_kind(const std::string& tarball) {
    ArchivePtr a = open_tarball(tarball);
    ArchiveKind k;
    archive_entry* e;
    while (!(k.oci && k.docker)) {
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) throw Error(EINVAL, tarball + ": " + aerr(a.get()));
        const char* p = archive_entry_pathname(e);
        if (!p || archive_entry_filetype(e) != AE_IFREG) continue;
        std::string n = normalize(p);
        if (n == "manifest.json") k.docker = true;
        if (n != "index.json") continue;
        k.oci = true;
        k.index = read_small_entry(a.get(), e, n);
    }
    return k;
}
}  // namespace

std::vector<ImportedImage> load_images(const Store& store, const std::string& input, const std::string& name) {
    store.remove_orphan_temps();  // what an earlier, killed load or pull left
    std::error_code ec;
    if (std::filesystem::is_directory(input, ec)) return load_oci_layout(store, input, name);
    if (!std::filesystem::exists(input, ec)) throw Error(ENOENT, "load: " + input + ": no such file or directory");
    ArchiveKind kind;
    try {
        kind = archive_kind(input);
    } catch (const Error& e) {
        throw e.wrap("load");
    }
    if (!kind.oci && !kind.docker)
        throw Error(EINVAL, "load " + input +
                                ": neither an oci-archive (no index.json) nor a docker-archive (no manifest.json)");
    if (!kind.oci) return import_docker_archive(store, input, name, true);
    // --name with several images is the user's mistake, not a format to fall back from.
    if (!name.empty()) {
        size_t count = 1;
        try {
            count = parse_index(kind.index, "index.json").manifests.size();
        } catch (const Error&) {
            // unreadable: the loads below say why
        }
        if (count != 1)
            throw Error(EINVAL, "load " + input + ": a name was given but the index lists " + std::to_string(count) +
                                    " images");
    }
    // The index first, as podman does: it has the full names (containerd's
    // and docker's own manifest.json shorten docker.io names).
    try {
        return load_oci_archive(store, input, name);
    } catch (const Error& oci_err) {
        if (!kind.docker) throw;
        try {
            auto got = import_docker_archive(store, input, name, true);
            log::warn("load " + input + ": its OCI index failed (" + oci_err.what() + "); loaded from its manifest.json");
            return got;
        } catch (const Error& docker_err) {
            throw Error(EINVAL, "load " + input + ": not an OCI archive (" + oci_err.what() + ") nor a docker archive (" +
                                    docker_err.what() + ")");
        }
    }
}

}  // namespace vitro::image

namespace vitro::image {

namespace {
// Dockerfile's exec form (a JSON array) or shell form (run by /bin/sh -c).
json command_value(const std::string& value, bool shell_form) {
    if (!value.empty() && value[0] == '[') {
        json j = json::parse(value, nullptr, false);
        if (j.is_array() && std::all_of(j.begin(), j.end(), [](const json& v) { return v.is_string(); })) return j;
    }
    if (shell_form) return json::array({"/bin/sh", "-c", value});
    return json::array({value});
}

// "K=V K2=V2" or "K V" (one pair), as ENV and LABEL take them.
std::vector<std::pair<std::string, std::string>> pairs_of(const std::string& value, const std::string& change) {
    std::vector<std::pair<std::string, std::string>> out;
    auto eq = value.find('=');
    auto sp = value.find(' ');
    if (eq == std::string::npos || (sp != std::string::npos && sp < eq)) {
        if (sp == std::string::npos) throw Error(EINVAL, "--change \"" + change + "\": expected KEY=VALUE");
        out.emplace_back(value.substr(0, sp), trim(value.substr(sp + 1)));
        return out;
    }
    for (const auto& word : split(value, ' ')) {
        if (word.empty()) continue;
        auto e = word.find('=');
        if (e == std::string::npos || e == 0) throw Error(EINVAL, "--change \"" + change + "\": expected KEY=VALUE");
        std::string v = word.substr(e + 1);
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        out.emplace_back(word.substr(0, e), v);
    }
    return out;
}
}  // namespace

void apply_config_change(json& config, const std::string& change) {
    std::string c = trim(change);
    size_t cut = c.find_first_of(" =");
    if (cut == std::string::npos || cut == 0) throw Error(EINVAL, "--change \"" + change + "\": expected INSTRUCTION VALUE");
    std::string instr = c.substr(0, cut);
    for (auto& ch : instr) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    std::string value = trim(c.substr(cut + 1));
    if (instr == "CMD") config["Cmd"] = command_value(value, true);
    else if (instr == "ENTRYPOINT") config["Entrypoint"] = command_value(value, true);
    else if (instr == "WORKDIR") config["WorkingDir"] = value;
    else if (instr == "USER") config["User"] = value;
    else if (instr == "STOPSIGNAL") config["StopSignal"] = value;
    else if (instr == "ENV") {
        json env = config.value("Env", json::array());
        for (const auto& [k, v] : pairs_of(value, change)) {
            json kept = json::array();
            for (const auto& e : env)
                if (e.get<std::string>().rfind(k + "=", 0) != 0) kept.push_back(e);
            kept.push_back(k + "=" + v);
            env = kept;
        }
        config["Env"] = env;
    } else if (instr == "LABEL") {
        for (const auto& [k, v] : pairs_of(value, change)) config["Labels"][k] = v;
    } else if (instr == "EXPOSE" || instr == "VOLUME") {
        json items = command_value(value, false);
        if (items.size() == 1) {
            items = json::array();
            for (const auto& w : split(value, ' '))
                if (!w.empty()) items.push_back(w);
        }
        for (const auto& item : items) {
            std::string s = item.get<std::string>();
            if (instr == "EXPOSE") {
                auto slash = s.find('/');
                uint64_t port = 0;
                if (!parse_u64(s.substr(0, slash), port) || port == 0 || port > 65535)
                    throw Error(EINVAL, "--change \"" + change + "\": invalid port \"" + s + "\"");
                if (slash == std::string::npos) s += "/tcp";
                config["ExposedPorts"][s] = json::object();
            } else {
                config["Volumes"][s] = json::object();
            }
        }
    } else {
        throw Error(EINVAL, "--change \"" + change + "\": " + instr +
                                " is not one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR");
    }
}

std::string import_rootfs_tarball(const Store& store, int fd, const std::string& name,
                                  const std::vector<std::string>& changes, const std::string& message) {
    json config = json::object();
    for (const auto& c : changes) apply_config_change(config, c);  // bad input: nothing stored yet
    AddedBlobs added(store);
    std::string layer;
    {
        BlobWriter w = store.begin_blob();
        char buf[1 << 16];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) != 0) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("import: read the tarball");
            w.write(buf, static_cast<size_t>(n));
        }
        bool is_new = false;
        layer = w.commit({}, -1, &is_new);
        if (is_new) added.add(layer);  // a layer already stored stays on failure
    }
    const std::string media_type = layer_media_type(store, layer);
    {
        // A tar archive, not anything that decompresses.
        UniqueFd blob = store.open_blob(layer);
        ArchivePtr a(archive_read_new());
        archive_read_support_filter_all(a.get());
        archive_read_support_format_tar(a.get());
        archive_read_support_format_empty(a.get());
        archive_entry* e;
        int r = ARCHIVE_FATAL;
        if (archive_read_open_fd(a.get(), blob.get(), 1 << 16) == ARCHIVE_OK) r = archive_read_next_header(a.get(), &e);
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN && r != ARCHIVE_EOF)
            throw Error(EINVAL, "import: not a tar archive: " + aerr(a.get()));
    }
    const std::string diff = diff_id_of(store, layer, media_type);
    const std::string now = rfc3339_now();
    json history = {{"created", now}, {"created_by", "vitro import"}};
    if (!message.empty()) history["comment"] = message;
    json cfg = {{"created", now},
                {"architecture", "amd64"},
                {"os", "linux"},
                {"config", config},
                {"rootfs", {{"type", "layers"}, {"diff_ids", {diff}}}},
                {"history", json::array({history})}};
    const std::string cfg_text = cfg.dump();
    parse_config(cfg_text, "image config");  // what load_image will read back
    auto put = [&](const std::string& text) {
        BlobWriter w = store.begin_blob();
        w.write(text);
        bool is_new = false;
        std::string d = w.commit({}, -1, &is_new);
        if (is_new) added.add(d);
        return d;
    };
    Manifest m;
    m.media_type = media::kOciManifest;
    m.config = Descriptor{std::string(media::kOciConfig), put(cfg_text), static_cast<int64_t>(cfg_text.size()), {}, {}};
    UniqueFd blob = store.open_blob(layer);
    struct stat st;
    if (::fstat(blob.get(), &st) < 0) throw_errno("stat", layer);
    m.layers.push_back(Descriptor{media_type, layer, st.st_size, {}, {}});
    const std::string mtext = to_json(m).dump();
    store.tag(name, Descriptor{std::string(media::kOciManifest), put(mtext), static_cast<int64_t>(mtext.size()), {}, {}});
    added.commit();
    return m.config.digest;
}

}  // namespace vitro::image
