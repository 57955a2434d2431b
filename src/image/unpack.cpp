#include "image/unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "image/digest.hpp"
#include "image/fsutil.hpp"
#include "image/store.hpp"
#include "linux/mounts.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"

namespace vitro::image {

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

struct ArchiveDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

std::string archive_err(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

// Splits an entry path into components; "" and "." are dropped, ".." rejects.
std::vector<std::string> split_entry_path(const char* path, std::string_view what) {
    if (!path) throw Error(EINVAL, std::string(what) + ": entry without a path (or not convertible)");
    std::vector<std::string> comps;
    std::string_view p = path;
    while (!p.empty()) {
        size_t slash = p.find('/');
        std::string_view c = p.substr(0, slash);
        if (c == "..")
            throw Error(EINVAL, std::string(what) + " \"" + std::string(path) + "\": \"..\" in a layer path");
        if (!c.empty() && c != ".") comps.emplace_back(c);
        if (slash == std::string_view::npos) break;
        p.remove_prefix(slash + 1);
    }
    return comps;
}

std::string join(const std::vector<std::string>& comps, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += (i ? "/" : "") + comps[i];
    return s.empty() ? "." : s;
}

bool keep_xattr(std::string_view name) {
    return name.substr(0, 5) == "user." || name == "security.capability";
}

// Reads the decompressed stream from `outer` (format "raw") for the tar
// reader, hashing every byte: the hash is the layer's diffID.
struct Stream {
    archive* outer = nullptr;
    Sha256 hash;
    std::string error;
    char buf[1 << 16];
};

la_ssize_t stream_read(archive*, void* client, const void** out) {
    auto* s = static_cast<Stream*>(client);
    la_ssize_t n = archive_read_data(s->outer, s->buf, sizeof s->buf);
    if (n < 0) {
        s->error = archive_err(s->outer);
        return -1;
    }
    s->hash.update(s->buf, static_cast<size_t>(n));
    *out = s->buf;
    return n;
}

class Unpacker {
public:
    Unpacker(int root_fd, archive* tar) : root_(root_fd), tar_(tar), chown_(::geteuid() == 0) {}
    // Extraction into a directory of a tree (`vitro cp`), not a layer: entries
    // go below `dest` (components inside root_fd), ".wh." names are plain
    // files, the entries' owners may be replaced by `owner`.
    Unpacker(int root_fd, archive* tar, const std::string& dest, const ExtractOptions& opts)
        : root_(root_fd), tar_(tar), chown_(::geteuid() == 0), layer_(false), owner_(opts.owner) {
        for (const auto& c : split_entry_path(dest.c_str(), "destination")) prefix_.push_back(c);
    }

    void entry(archive_entry* e);
    void finish();

private:
    struct DirTime {
        std::string path;
        timespec mtime;
    };

    UniqueFd open_parent(const std::vector<std::string>& comps, const std::string& what);
    void clear_existing(int pfd, const std::string& name, bool keep_dir, const std::string& what);
    void set_owner_at(int pfd, const std::string& name, archive_entry* e, const std::string& what);
    void set_xattrs(int fd, archive_entry* e, const std::string& what);
    void write_data(int fd, archive_entry* e, const std::string& what);
    static timespec mtime_of(archive_entry* e) {
        return timespec{archive_entry_mtime(e), archive_entry_mtime_is_set(e) ? archive_entry_mtime_nsec(e) : 0};
    }

    uid_t uid_of(archive_entry* e) const {
        return owner_ ? owner_->first : static_cast<uid_t>(archive_entry_uid(e));
    }
    gid_t gid_of(archive_entry* e) const {
        return owner_ ? owner_->second : static_cast<gid_t>(archive_entry_gid(e));
    }

    int root_;
    archive* tar_;
    bool chown_;
    bool layer_ = true;
    std::optional<std::pair<uid_t, gid_t>> owner_;
    std::vector<std::string> prefix_;
    std::vector<DirTime> dir_times_;
};

UniqueFd Unpacker::open_parent(const std::vector<std::string>& comps, const std::string& what) {
    std::string rel = join(comps, comps.size() - 1);
    UniqueFd fd = os::try_open_in_root(root_, rel, O_DIRECTORY);
    if (!fd && errno == ENOENT) {
        // Missing parents are made 0755 (tar streams may omit them); each step
        // is resolved inside the root, so this cannot climb out either.
        try {
            fd = os::mkdir_all_in_root(root_, rel);
        } catch (const Error& err) {
            throw err.wrap(what);
        }
        struct stat st;
        if (::fstat(fd.get(), &st) < 0) throw_errno("stat parent of", what);
        if (!S_ISDIR(st.st_mode)) throw_errno(ENOTDIR, "parent of layer entry", what);
    }
    if (!fd) throw_errno("open parent of layer entry", what);
    return fd;
}

void Unpacker::clear_existing(int pfd, const std::string& name, bool keep_dir, const std::string& what) {
    struct stat st;
    if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return;
        throw_errno("stat", what);
    }
    if (keep_dir && S_ISDIR(st.st_mode)) return;
    try {
        remove_tree_at(pfd, name);
    } catch (const Error& err) {
        throw err.wrap(what);
    }
}

void Unpacker::set_owner_at(int pfd, const std::string& name, archive_entry* e, const std::string& what) {
    if (!chown_) return;
    if (::fchownat(pfd, name.c_str(), uid_of(e), gid_of(e), AT_SYMLINK_NOFOLLOW) < 0)
        throw_errno("chown", what);
}

void Unpacker::set_xattrs(int fd, archive_entry* e, const std::string& what) {
    if (archive_entry_xattr_reset(e) == 0) return;
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        if (!name || !keep_xattr(name)) continue;
        if (::fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP)
            throw_errno("setxattr " + std::string(name), what);
    }
}

void Unpacker::write_data(int fd, archive_entry* e, const std::string& what) {
    const void* buf;
    size_t size;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(tar_, &buf, &size, &off)) == ARCHIVE_OK) {
        const char* p = static_cast<const char*>(buf);
        while (size > 0) {
            ssize_t n = ::pwrite(fd, p, size, off);
            if (n < 0) {
                if (errno == EINTR) continue;
                throw_errno("write", what);
            }
            p += n;
            off += n;
            size -= static_cast<size_t>(n);
        }
    }
    if (r != ARCHIVE_EOF) throw Error(EIO, what + ": reading layer data: " + archive_err(tar_));
    // A sparse file's hole at the end: extend to the recorded size.
    if (archive_entry_size_is_set(e) && ::ftruncate(fd, archive_entry_size(e)) < 0) throw_errno("truncate", what);
}

void Unpacker::entry(archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    std::vector<std::string> comps = split_entry_path(raw, layer_ ? "layer entry" : "archive entry");
    const std::string what = (layer_ ? "layer entry \"" : "archive entry \"") + std::string(raw) + "\"";
    const mode_t type = archive_entry_filetype(e);
    const mode_t perm = archive_entry_perm(e) & 07777;
    const char* hardlink = archive_entry_hardlink(e);

    if (comps.empty()) {  // the layer root itself: only a directory's metadata applies
        if (!layer_) return;  // a copy's destination directory keeps its own
        if (type == AE_IFDIR && !hardlink) {
            if (chown_ && ::fchown(root_, static_cast<uid_t>(archive_entry_uid(e)),
                                   static_cast<gid_t>(archive_entry_gid(e))) < 0)
                throw_errno("chown", what);
            if (::fchmod(root_, perm) < 0) throw_errno("chmod", what);
            dir_times_.push_back({".", mtime_of(e)});
        }
        return;
    }
    comps.insert(comps.begin(), prefix_.begin(), prefix_.end());
    const std::string& base = comps.back();
    UniqueFd parent = open_parent(comps, what);
    const int pfd = parent.get();

    // OCI whiteouts -> overlayfs whiteouts.
    if (layer_ && base == kOpaqueMarker) {
        UniqueFd dir(::openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir) throw_errno("open", what);
        if (::fsetxattr(dir.get(), "trusted.overlay.opaque", "y", 1, 0) < 0) throw_errno("set opaque xattr for", what);
        return;
    }
    if (layer_ && std::string_view(base).substr(0, kWhiteoutPrefix.size()) == kWhiteoutPrefix) {
        std::string name = base.substr(kWhiteoutPrefix.size());
        if (name.empty() || name == "." || name == "..") throw Error(EINVAL, what + ": invalid whiteout name");
        clear_existing(pfd, name, false, what);
        if (::mknodat(pfd, name.c_str(), S_IFCHR | 0, ::makedev(0, 0)) < 0) throw_errno("mknod whiteout", what);
        set_owner_at(pfd, name, e, what);
        return;
    }

    if (hardlink) {
        std::vector<std::string> tcomps = split_entry_path(hardlink, what + " hardlink target");
        tcomps.insert(tcomps.begin(), prefix_.begin(), prefix_.end());
        if (tcomps.size() == prefix_.size()) throw Error(EINVAL, what + ": hardlink to the layer root");
        std::string tparent_rel = join(tcomps, tcomps.size() - 1);
        UniqueFd tparent = os::try_open_in_root(root_, tparent_rel, O_DIRECTORY);
        if (!tparent) throw_errno("resolve hardlink target \"" + std::string(hardlink) + "\" of", what);
        struct stat st;
        if (::fstatat(tparent.get(), tcomps.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
            throw_errno("hardlink target \"" + std::string(hardlink) + "\" of", what);
        if (S_ISDIR(st.st_mode)) throw Error(EPERM, what + ": hardlink to a directory");
        clear_existing(pfd, base, false, what);
        // No AT_SYMLINK_FOLLOW: a symlink target is linked itself, never followed.
        if (::linkat(tparent.get(), tcomps.back().c_str(), pfd, base.c_str(), 0) < 0)
            throw_errno("hardlink \"" + std::string(hardlink) + "\" as", what);
        return;
    }

    const timespec times[2] = {mtime_of(e), mtime_of(e)};
    switch (type) {
    case AE_IFDIR: {
        clear_existing(pfd, base, true, what);
        if (::mkdirat(pfd, base.c_str(), 0700) < 0 && errno != EEXIST) throw_errno("mkdir", what);
        UniqueFd d(::openat(pfd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!d) throw_errno("open", what);
        if (chown_ && ::fchown(d.get(), uid_of(e), gid_of(e)) < 0)
            throw_errno("chown", what);
        if (::fchmod(d.get(), perm) < 0) throw_errno("chmod", what);
        set_xattrs(d.get(), e, what);
        dir_times_.push_back({join(comps, comps.size()), times[0]});
        return;
    }
    case AE_IFREG: {
        clear_existing(pfd, base, false, what);
        UniqueFd f(::openat(pfd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!f) throw_errno("create", what);
        write_data(f.get(), e, what);
        if (chown_ && ::fchown(f.get(), uid_of(e), gid_of(e)) < 0)
            throw_errno("chown", what);
        if (::fchmod(f.get(), perm) < 0) throw_errno("chmod", what);  // after chown, which clears set-id bits
        set_xattrs(f.get(), e, what);
        if (::futimens(f.get(), times) < 0) throw_errno("set times of", what);
        return;
    }
    case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target) throw Error(EINVAL, what + ": symlink without a target");
        clear_existing(pfd, base, false, what);
        // The target is stored as is: nothing here ever follows it.
        if (::symlinkat(target, pfd, base.c_str()) < 0) throw_errno("symlink", what);
        set_owner_at(pfd, base, e, what);
        if (::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("set times of", what);
        return;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
        clear_existing(pfd, base, false, what);
        dev_t dev = type == AE_IFIFO ? 0 : ::makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        if (::mknodat(pfd, base.c_str(), type | perm, dev) < 0) throw_errno("mknod", what);
        set_owner_at(pfd, base, e, what);
        // Just made by us in a directory only we write to: not a symlink.
        if (::fchmodat(pfd, base.c_str(), perm, 0) < 0) throw_errno("chmod", what);
        if (::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("set times of", what);
        return;
    }
    default:  // sockets and unknown types carry nothing a container can use
        return;
    }
}

void Unpacker::finish() {
    // Directory times last: creating entries inside changed them.
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
        UniqueFd d = os::try_open_in_root(root_, it->path, O_DIRECTORY | O_NOFOLLOW);
        if (!d) continue;  // replaced by a later entry
        const timespec times[2] = {it->mtime, it->mtime};
        UniqueFd real(::openat(d.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (real) ::futimens(real.get(), times);
    }
}

UnpackResult unpack_into(archive* outer, const std::string& dest_dir) {
    if (::mkdir(dest_dir.c_str(), 0755) < 0) throw_errno("create layer directory", dest_dir);
    try {
        UniqueFd root(::open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!root) throw_errno("open", dest_dir);

        archive_entry* e;
        int r = archive_read_next_header(outer, &e);
        if (r == ARCHIVE_EOF) throw Error(EINVAL, "layer: empty stream");
        if (r < ARCHIVE_WARN) throw Error(EINVAL, "layer: " + archive_err(outer));

        Stream stream;
        stream.outer = outer;
        ArchivePtr tar(archive_read_new());
        if (!tar) throw Error(ENOMEM, "archive_read_new");
        archive_read_support_format_tar(tar.get());
        if (archive_read_open(tar.get(), &stream, nullptr, stream_read, nullptr) != ARCHIVE_OK)
            throw Error(EINVAL, "layer: not a tar archive: " + (stream.error.empty() ? archive_err(tar.get()) : stream.error));

        Unpacker unpacker(root.get(), tar.get());
        UnpackResult res;
        for (;;) {
            r = archive_read_next_header(tar.get(), &e);
            if (r == ARCHIVE_EOF) break;
            if (r < ARCHIVE_WARN)
                throw Error(EINVAL, "layer: " + (stream.error.empty() ? archive_err(tar.get()) : stream.error));
            unpacker.entry(e);
            ++res.entries;
        }
        unpacker.finish();
        // The diffID covers the whole stream, padding after the end marker included.
        char buf[1 << 16];
        la_ssize_t n;
        while ((n = archive_read_data(outer, buf, sizeof buf)) > 0) stream.hash.update(buf, static_cast<size_t>(n));
        if (n < 0) throw Error(EINVAL, "layer: " + archive_err(outer));
        res.diff_id = stream.hash.digest();
        return res;
    } catch (const Error& err) {
        try {
            remove_tree(dest_dir);
        } catch (...) {
            // The unpack error is the one to report (rethrown below)
        }
        throw err.wrap("unpack layer into " + dest_dir);
    }
}

ArchivePtr new_outer() {
    ArchivePtr a(archive_read_new());
    if (!a) throw Error(ENOMEM, "archive_read_new");
    archive_read_support_filter_all(a.get());
    archive_read_support_format_raw(a.get());
    return a;
}

}  // namespace

UnpackResult unpack_layer(int blob_fd, const std::string& dest_dir) {
    ArchivePtr a = new_outer();
    if (archive_read_open_fd(a.get(), blob_fd, 1 << 16) != ARCHIVE_OK)
        throw Error(EINVAL, "unpack layer into " + dest_dir + ": " + archive_err(a.get()));
    return unpack_into(a.get(), dest_dir);
}

namespace {
// archive_read_open's view of a ChunkSource: a thrown Error becomes the
// archive's error message, as C code cannot pass an exception on.
struct ChunkReader {
    const ChunkSource* next;
};

la_ssize_t read_chunk(archive* a, void* client, const void** out) {
    try {
        std::string_view chunk = (*static_cast<ChunkReader*>(client)->next)();
        *out = chunk.data();
        return static_cast<la_ssize_t>(chunk.size());
    } catch (const std::exception& e) {
        archive_set_error(a, EIO, "%s", e.what());
    } catch (...) {
        archive_set_error(a, EIO, "reading the layer failed");
    }
    return -1;
}
}  // namespace

UnpackResult unpack_layer_chunks(const ChunkSource& next_chunk, const std::string& dest_dir) {
    ArchivePtr a = new_outer();
    ChunkReader reader{&next_chunk};
    if (archive_read_open(a.get(), &reader, nullptr, read_chunk, nullptr) != ARCHIVE_OK)
        throw Error(EINVAL, "unpack layer into " + dest_dir + ": " + archive_err(a.get()));
    return unpack_into(a.get(), dest_dir);
}

UnpackResult unpack_layer_bytes(std::string_view data, const std::string& dest_dir) {
    ArchivePtr a = new_outer();
    if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK)
        throw Error(EINVAL, "unpack layer into " + dest_dir + ": " + archive_err(a.get()));
    return unpack_into(a.get(), dest_dir);
}

uint64_t extract_archive(int in_fd, int root_fd, const std::string& dest, const ExtractOptions& opts) {
    ArchivePtr tar(archive_read_new());
    if (!tar) throw Error(ENOMEM, "archive_read_new");
    archive_read_support_filter_all(tar.get());
    archive_read_support_format_tar(tar.get());
    if (archive_read_open_fd(tar.get(), in_fd, 1 << 16) != ARCHIVE_OK)
        throw Error(EINVAL, "reading the archive: " + archive_err(tar.get()));
    Unpacker unpacker(root_fd, tar.get(), dest, opts);
    uint64_t entries = 0;
    for (;;) {
        archive_entry* e;
        int r = archive_read_next_header(tar.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) throw Error(EINVAL, "reading the archive: " + archive_err(tar.get()));
        unpacker.entry(e);
        ++entries;
    }
    unpacker.finish();
    return entries;
}

std::string layer_rootfs(const Store& store, std::string_view diff_id) {
    return store.layers_dir() + "/" + digest_hex(diff_id) + "/rootfs";
}

bool layer_ready(const Store& store, std::string_view diff_id) {
    return path_exists(store.layers_dir() + "/" + digest_hex(diff_id) + "/complete");
}

PendingLayer::PendingLayer(const Store& store, std::string_view diff_id) : store_(store), diff_id_(diff_id) {
    check_digest(diff_id, "layer diffID");
    tmp_ = store.layers_dir() + "/.tmp-" + digest_hex(diff_id).substr(0, 12) + "-XXXXXX";
    if (!::mkdtemp(tmp_.data())) throw_errno("create temporary layer directory in", store.layers_dir());
}

PendingLayer::~PendingLayer() {
    if (published_) return;
    try {
        remove_tree(tmp_);
    } catch (...) {
        // A destructor must not throw: a directory that cannot be removed is left behind
    }
}

std::string PendingLayer::publish(std::string_view blob_digest) {
    const std::string final_dir = store_.layers_dir() + "/" + digest_hex(diff_id_);
    UniqueFd marker(::open((tmp_ + "/complete").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!marker) throw_errno("create", tmp_ + "/complete");
    write_all(marker.get(), std::string(blob_digest) + "\n", tmp_ + "/complete");
    if (::rename(tmp_.c_str(), final_dir.c_str()) < 0) {
        if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("rename", tmp_ + " to " + final_dir);
        // Another process finished the same layer first: use theirs (the
        // destructor removes ours).
        if (!layer_ready(store_, diff_id_)) throw Error(EIO, final_dir + ": exists but is not complete");
        return final_dir + "/rootfs";
    }
    published_ = true;
    return final_dir + "/rootfs";
}

void check_diff_id(const UnpackResult& unpacked, std::string_view blob_digest, std::string_view diff_id) {
    if (unpacked.diff_id != diff_id)
        throw Error(EINVAL, "layer " + std::string(blob_digest) + ": uncompressed content hashes to " +
                                unpacked.diff_id + ", the image config says " + std::string(diff_id));
}

std::string ensure_layer(const Store& store, std::string_view blob_digest, std::string_view diff_id) {
    check_digest(diff_id, "layer diffID");
    if (layer_ready(store, diff_id)) return layer_rootfs(store, diff_id);
    PendingLayer layer(store, diff_id);
    UniqueFd blob = store.open_blob(blob_digest);
    check_diff_id(unpack_layer(blob.get(), layer.rootfs()), blob_digest, diff_id);
    return layer.publish(blob_digest);
}

}  // namespace vitro::image
