#include "image/tree_tar.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "linux/mounts.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vitro::image {

namespace {

struct WriteFree {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryFree>;

class TreeWriter {
public:
    explicit TreeWriter(int out_fd) : a_(archive_write_new()) {
        if (!a_) throw Error(ENOMEM, "archive_write_new");
        archive_write_set_format_pax_restricted(a_.get());
        if (archive_write_open_fd(a_.get(), out_fd) != ARCHIVE_OK) fail("open the archive");
    }

    // `name` under `dirfd`; "" for dirfd itself.
    void add(int dirfd, const std::string& name, const std::string& tar_name) {
        const char* n = name.empty() ? "" : name.c_str();
        const std::string what = tar_name.empty() ? "." : tar_name;
        struct stat st;
        if (::fstatat(dirfd, n, &st, AT_SYMLINK_NOFOLLOW | (name.empty() ? AT_EMPTY_PATH : 0)) < 0)
            throw_errno("stat", what);
        if (S_ISDIR(st.st_mode)) {
            UniqueFd d(name.empty() ? ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                    : ::openat(dirfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!d) throw_errno("open directory", what);
            if (!tar_name.empty()) header(st, tar_name + "/");
            const std::string prefix = tar_name.empty() ? "" : tar_name + "/";
            for (const auto& child : list(d.get(), what)) add(d.get(), child, prefix + child);
            return;
        }
        if (tar_name.empty()) throw Error(ENOTDIR, what + ": only a directory's contents can be archived without a name");
        if (S_ISLNK(st.st_mode)) {
            std::string target(4096, '\0');
            ssize_t len = ::readlinkat(dirfd, n, target.data(), target.size());
            if (len < 0) throw_errno("readlink", what);
            target.resize(static_cast<size_t>(len));
            auto e = header_entry(st, tar_name);
            archive_entry_set_symlink(e.get(), target.c_str());
            write_header(e.get(), what);
            return;
        }
        if (S_ISREG(st.st_mode)) {
            if (st.st_nlink > 1) {
                auto [it, fresh] = links_.try_emplace({st.st_dev, st.st_ino}, tar_name);
                if (!fresh) {
                    auto e = header_entry(st, tar_name);
                    archive_entry_set_hardlink(e.get(), it->second.c_str());
                    archive_entry_set_size(e.get(), 0);
                    write_header(e.get(), what);
                    return;
                }
            }
            // O_PATH fds (the named source itself) are reopened for reading
            // through /proc: that names the inode already found, nothing else.
            UniqueFd f(name.empty() ? ::open(os::fd_path(dirfd).c_str(), O_RDONLY | O_CLOEXEC)
                                    : ::openat(dirfd, n, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
            if (!f) throw_errno("open", what);
            header(st, tar_name);
            copy_data(f.get(), st.st_size, what);
            return;
        }
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
            auto e = header_entry(st, tar_name);
            archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
            archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
            write_header(e.get(), what);
        }
        // sockets: nothing to archive
    }

    uint64_t close() {
        if (archive_write_close(a_.get()) != ARCHIVE_OK) fail("finish the archive");
        return entries_;
    }

private:
    static std::vector<std::string> list(int dirfd, const std::string& what) {
        int dup_fd = ::dup(dirfd);
        if (dup_fd < 0) throw_errno("dup");
        DIR* d = ::fdopendir(dup_fd);
        if (!d) {
            ::close(dup_fd);
            throw_errno("read directory", what);
        }
        std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
        std::vector<std::string> names;
        while (dirent* e = ::readdir(d))
            if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") names.emplace_back(e->d_name);
        std::sort(names.begin(), names.end());  // the same tree, the same archive
        return names;
    }

    EntryPtr header_entry(const struct stat& st, const std::string& tar_name) {
        EntryPtr e(archive_entry_new());
        if (!e) throw Error(ENOMEM, "archive_entry_new");
        archive_entry_set_pathname(e.get(), tar_name.c_str());
        archive_entry_set_filetype(e.get(), st.st_mode & S_IFMT);
        archive_entry_set_perm(e.get(), st.st_mode & 07777);
        archive_entry_set_uid(e.get(), st.st_uid);
        archive_entry_set_gid(e.get(), st.st_gid);
        archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        archive_entry_set_size(e.get(), S_ISREG(st.st_mode) ? st.st_size : 0);
        return e;
    }
    void header(const struct stat& st, const std::string& tar_name) {
        auto e = header_entry(st, tar_name);
        write_header(e.get(), tar_name);
    }
    void write_header(archive_entry* e, const std::string& what) {
        if (archive_write_header(a_.get(), e) != ARCHIVE_OK) fail("write the header of " + what);
        ++entries_;
    }
    // At most `size` bytes (the header's): a file that grew meanwhile is cut,
    // one that shrank is padded by libarchive.
    void copy_data(int fd, off_t size, const std::string& what) {
        char buf[1 << 16];
        off_t left = size;
        while (left > 0) {
            ssize_t n = ::read(fd, buf, static_cast<size_t>(std::min<off_t>(left, sizeof buf)));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("read", what);
            if (n == 0) break;
            if (archive_write_data(a_.get(), buf, static_cast<size_t>(n)) < 0) fail("write " + what);
            left -= n;
        }
    }
    [[noreturn]] void fail(const std::string& op) {
        const char* msg = archive_error_string(a_.get());
        int err = archive_errno(a_.get());
        throw Error(err > 0 ? err : EIO, op + ": " + (msg ? msg : "libarchive error"));
    }

    std::unique_ptr<archive, WriteFree> a_;
    std::map<std::pair<dev_t, ino_t>, std::string> links_;
    uint64_t entries_ = 0;
};

}  // namespace

uint64_t write_tree_tar(int src_fd, int out_fd, const TarTreeOptions& opts) {
    TreeWriter w(out_fd);
    w.add(src_fd, "", opts.name);
    return w.close();
}

}  // namespace vitro::image
