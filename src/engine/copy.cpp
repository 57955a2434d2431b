#include "engine/copy.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <exception>
#include <functional>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/engine.hpp"
#include "image/tree_tar.hpp"
#include "image/unpack.hpp"
#include "linux/mounts.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::engine {

namespace {

// A path as given, split into what the rules need.
struct PathParts {
    std::string path;             // to open: a container's cleaned ("/a/b"), a host's as given
    bool trailing_slash = false;  // "DIR/" or "DIR/.": must be a directory
    bool contents = false;        // "DIR/.": the directory's contents
};

bool ends_with(const std::string& s, std::string_view end) {
    return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

// Lexically cleaned, absolute (podman takes container paths relative to
// "/"); ".." stops at "/". Resolution inside the rootfs is confined anyway:
// this only keeps ".." out of the names an archive entry is made under.
std::string clean_container_path(const std::string& raw) {
    std::vector<std::string> out;
    for (const auto& c : split(raw, '/')) {
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (!out.empty()) out.pop_back();
            continue;
        }
        out.push_back(c);
    }
    return "/" + join(out, "/");
}

std::string base_name(const std::string& path) {
    std::string p = path;
    while (p.size() > 1 && (ends_with(p, "/") || ends_with(p, "/."))) p.resize(p.size() - (ends_with(p, "/") ? 1 : 2));
    if (p == "/" || p == ".") return "";
    auto slash = p.rfind('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string dir_name(const std::string& path) {
    std::string p = path;
    while (p.size() > 1 && ends_with(p, "/")) p.pop_back();
    auto slash = p.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : p.substr(0, slash);
}

// One end of a copy: a container's rootfs, or the host (rootfs null).
struct Place {
    const ContainerRootfs* rootfs = nullptr;

    std::string where() const { return rootfs ? " in container " + rootfs->container().name : " on the host"; }
    PathParts parts(const std::string& raw) const {
        PathParts p;
        p.contents = raw == "." || ends_with(raw, "/.");
        p.trailing_slash = p.contents || ends_with(raw, "/");
        p.path = rootfs ? clean_container_path(raw) : raw;
        return p;
    }
    // An O_PATH fd (the final symlink followed, inside the rootfs for a
    // container); empty with errno set when it cannot be opened.
    UniqueFd open(const std::string& path, int flags = 0) const {
        if (rootfs) return os::try_open_in_root(rootfs->fd(), path, flags);
        return UniqueFd(::open(path.c_str(), O_PATH | O_CLOEXEC | flags));
    }
    [[noreturn]] void fail(int err, const std::string& raw, const std::string& what) const {
        throw Error(err, "\"" + raw + "\"" + where() + ": " + what);
    }
};

struct Source {
    UniqueFd fd;
    bool dir = false;
    std::string base;  // its name in a directory it is copied into
    bool contents = false;
};

Source open_source(const Place& at, const std::string& raw) {
    PathParts p = at.parts(raw);
    Source s;
    s.fd = at.open(p.path);
    if (!s.fd) {
        if (errno == ENOENT) at.fail(ENOENT, raw, "no such file or directory");
        if (errno == ENOTDIR) at.fail(ENOTDIR, raw, "not a directory");
        throw_errno("open \"" + raw + "\"" + at.where());
    }
    struct stat st;
    if (::fstat(s.fd.get(), &st) < 0) throw_errno("stat \"" + raw + "\"" + at.where());
    s.dir = S_ISDIR(st.st_mode);
    if (!s.dir && p.trailing_slash) at.fail(ENOTDIR, raw, "not a directory");
    s.base = base_name(p.path);
    s.contents = s.dir && (p.contents || s.base.empty());
    return s;
}

// Where the source's archive is extracted: into directory `dir` (a path in
// the place), its top entry named `name` ("" for the source's contents).
struct Target {
    std::string dir, name;
};

Target plan_target(const Place& at, const std::string& raw, const Source& src) {
    PathParts p = at.parts(raw);
    UniqueFd fd = at.open(p.path);
    if (fd) {
        struct stat st;
        if (::fstat(fd.get(), &st) < 0) throw_errno("stat \"" + raw + "\"" + at.where());
        if (S_ISDIR(st.st_mode)) return {p.path, src.contents ? "" : src.base};
        if (src.dir) at.fail(ENOTDIR, raw, "cannot copy a directory to a file");
        return {dir_name(p.path), base_name(p.path)};
    }
    if (errno == ENOTDIR) at.fail(ENOTDIR, raw, "not a directory");
    if (errno != ENOENT) throw_errno("open \"" + raw + "\"" + at.where());
    if (p.trailing_slash && !src.dir) at.fail(ENOENT, raw, "no such directory (a file is copied into an existing one)");
    std::string parent = dir_name(p.path);
    UniqueFd pfd = at.open(parent, O_DIRECTORY);
    if (!pfd) at.fail(ENOENT, raw, "no such file or directory (its parent \"" + parent + "\" must be a directory)");
    return {parent, base_name(p.path)};
}

// The uid and gid of the container's process (its config.json).
std::pair<uid_t, gid_t> container_user(const ContainerRecord& c) {
    try {
        auto spec = nlohmann::json::parse(read_file(c.bundle + "/config.json"));
        const auto& u = spec.at("process").at("user");
        return {u.value("uid", 0u), u.value("gid", 0u)};
    } catch (const std::exception& e) {
        throw Error(EINVAL, "container " + c.name + ": reading its user from config.json: " + e.what());
    }
}

void extract_into(const Place& at, int in_fd, const std::string& dir, const CopyOptions& opts) {
    image::ExtractOptions eo;
    if (at.rootfs) {
        if (opts.chown_to_container_user) eo.owner = container_user(at.rootfs->container());
        image::extract_archive(in_fd, at.rootfs->fd(), dir, eo);
        return;
    }
    // On the host the destination directory is the root: what the archive
    // makes (a symlink, then a path through it) stays below it.
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) throw_errno("open", dir);
    image::extract_archive(in_fd, d.get(), "/", eo);
}

// Archives `src` (as `name`) on a thread into a socket that `consume` reads.
void stream(const Source& src, const std::string& name, const std::function<void(int)>& consume) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) throw_errno("socketpair");
    UniqueFd r(sv[0]), w(sv[1]);
    std::exception_ptr write_error, read_error;
    std::thread writer([&] {
        // A reader that failed closes its end: EPIPE here, not a SIGPIPE.
        sigset_t pipe_sig;
        sigemptyset(&pipe_sig);
        sigaddset(&pipe_sig, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_sig, nullptr);
        try {
            image::write_tree_tar(src.fd.get(), w.get(), {name});
        } catch (...) {
            write_error = std::current_exception();
        }
        w.reset();
    });
    try {
        consume(r.get());
        char buf[1 << 16];  // the writer's last padding, after the end marker
        while (::read(r.get(), buf, sizeof buf) > 0) {
        }
    } catch (...) {
        read_error = std::current_exception();
    }
    ::shutdown(r.get(), SHUT_RDWR);
    writer.join();
    if (write_error) std::rethrow_exception(write_error);
    if (read_error) std::rethrow_exception(read_error);
}

}  // namespace

CopyEndpoint parse_copy_endpoint(const std::string& arg) {
    auto colon = arg.find(':');
    if (colon == std::string::npos || colon == 0 || arg[0] == '/' || arg[0] == '.') return {"", arg};
    if (arg.find('/') < colon) return {"", arg};
    return {arg.substr(0, colon), arg.substr(colon + 1)};
}

void copy(Engine& eng, const CopyEndpoint& src, const CopyEndpoint& dst, const CopyOptions& opts) {
    if (src.container.empty() && dst.container.empty())
        throw Error(EINVAL, "\"" + src.path + "\" and \"" + dst.path +
                                "\" are both on the host: name a container in one of them (CONTAINER:PATH)");
    for (const auto* e : {&src, &dst})
        if (e->path.empty()) throw Error(EINVAL, "no path after \"" + e->container + ":\"");
    std::optional<ContainerRootfs> src_root, dst_root;
    if (!src.container.empty()) src_root.emplace(eng.open_rootfs(src.container));
    const ContainerRootfs* dst_ptr = nullptr;
    if (!dst.container.empty()) {
        if (src_root && eng.get(dst.container).id == src_root->container().id) {
            dst_ptr = &*src_root;  // one container: its lock is held once
        } else {
            dst_root.emplace(eng.open_rootfs(dst.container));
            dst_ptr = &*dst_root;
        }
    }
    const Place from{src_root ? &*src_root : nullptr}, to{dst_ptr};

    if (src.container.empty() && src.path == "-") {
        PathParts p = to.parts(dst.path);
        UniqueFd d = to.open(p.path);
        struct stat st;
        if (!d || ::fstat(d.get(), &st) < 0) to.fail(ENOENT, dst.path, "no such directory");
        if (!S_ISDIR(st.st_mode)) to.fail(ENOTDIR, dst.path, "not a directory (an archive is extracted into one)");
        extract_into(to, STDIN_FILENO, p.path, opts);
        return;
    }
    Source s = open_source(from, src.path);
    if (dst.container.empty() && dst.path == "-") {
        image::write_tree_tar(s.fd.get(), STDOUT_FILENO, {s.contents ? "" : s.base});
        return;
    }
    Target t = plan_target(to, dst.path, s);
    stream(s, t.name, [&](int fd) { extract_into(to, fd, t.dir, opts); });
}

}  // namespace vitro::engine
