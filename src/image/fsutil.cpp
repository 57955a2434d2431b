#include "image/fsutil.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace vitro::image {

namespace {
void empty_dir(int fd, const std::string& what) {
    int dup = ::dup(fd);
    if (dup < 0) throw_errno("dup", what);
    DIR* d = ::fdopendir(dup);
    if (!d) {
        ::close(dup);
        throw_errno("opendir", what);
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    for (auto& n : names) remove_tree_at(fd, n);
}
}  // namespace

void remove_tree_at(int dirfd, const std::string& name) {
    if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return;
    if (errno != EISDIR) throw_errno("remove", name);
    UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) {
        if (errno == ENOENT) return;
        throw_errno("open directory for removal", name);
    }
    empty_dir(sub.get(), name);
    sub.reset();
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) throw_errno("rmdir", name);
}

uint64_t disk_usage(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    uint64_t total = 0;
    if (fs::is_regular_file(fs::symlink_status(path, ec))) return fs::file_size(path, ec);
    for (fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
    }
    return total;
}

}  // namespace vitro::image
