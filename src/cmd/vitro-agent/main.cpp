// vitro-agent: pid 1 of a microVM guest (--isolation vm). It loads the virtio
// modules, finds its virtio-serial port, says hello, and runs the one process
// the host asks for (vm/protocol.hpp) in the container's rootfs, shared from
// the host over virtiofs, and while it runs the execs the host asks for: their
// stdio and exit status travel as frames. When the process and everything it
// left are gone, it powers the VM off.
// Static and unsanitized: it is the only program in the initramfs.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/error.hpp"
#include "vm/protocol.hpp"

using namespace vitro;
using namespace vitro::vm;
using nlohmann::json;

namespace {

constexpr const char* kRootfs = "/rootfs";

// Before the port is there, the console (the VM's serial log on the host) is
// the only way out.
void say(const std::string& msg) { std::fprintf(stderr, "vitro-agent: %s\n", msg.c_str()); }

[[noreturn]] void power_off() {
    ::tcdrain(2);  // what say() wrote reaches the serial log first
    ::sync();
    ::reboot(RB_POWER_OFF);
    ::_exit(1);  // reboot() fails only outside a VM's pid 1
}

void mount_or_throw(const char* src, const char* dst, const char* type, unsigned long flags, const char* data = nullptr) {
    ::mkdir(dst, 0755);
    if (::mount(src, dst, type, flags, data) < 0) throw_errno("mount " + std::string(type), dst);
}

// Loads the modules of /modules/order, each after those it needs: passes
// until one loads nothing more (the order file is a hint, not a guarantee).
void load_modules() {
    std::vector<std::string> left;
    std::ifstream order("/modules/order");
    for (std::string m; std::getline(order, m);)
        if (!m.empty()) left.push_back(m);
    for (bool progress = true; progress && !left.empty();) {
        progress = false;
        std::vector<std::string> again;
        for (const auto& m : left) {
            int fd = ::open(("/modules/" + m + ".ko").c_str(), O_RDONLY | O_CLOEXEC);
            int rc = fd < 0 ? -1 : static_cast<int>(::syscall(SYS_finit_module, fd, "", 0));
            int err = errno;
            if (fd >= 0) ::close(fd);
            if (rc == 0 || err == EEXIST) progress = true;
            else again.push_back(m);
        }
        left = std::move(again);
    }
    for (const auto& m : left) say("module " + m + " did not load");
}

// /dev/vportNpM whose sysfs name is ours; the device shows up a little
// after its module loads.
std::string find_port() {
    for (int i = 0; i < 500; ++i) {
        if (DIR* d = ::opendir("/sys/class/virtio-ports")) {
            while (dirent* e = ::readdir(d)) {
                if (e->d_name[0] == '.') continue;
                std::ifstream f(std::string("/sys/class/virtio-ports/") + e->d_name + "/name");
                std::string name;
                std::getline(f, name);
                if (name == kAgentPortName) {
                    std::string dev = std::string("/dev/") + e->d_name;
                    ::closedir(d);
                    return dev;
                }
            }
            ::closedir(d);
        }
        ::usleep(10000);
    }
    throw Error(ENODEV, "no virtio-serial port named " + std::string(kAgentPortName));
}

class Port {
public:
    explicit Port(int fd) : fd_(fd) {}
    int fd() const { return fd_; }
    void send(FrameType t, std::string_view payload, uint8_t session = 0) { write_all(encode(t, payload, session)); }
    void send_u32(FrameType t, uint32_t v, uint8_t session = 0) { write_all(encode_u32(t, v, session)); }
    // Blocks for the next frame; nullopt at EOF.
    std::optional<Frame> receive() {
        for (;;) {
            if (auto f = dec_.next()) return f;
            char buf[65536];
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("read", "the agent port");
            if (n == 0) return std::nullopt;
            dec_.feed({buf, static_cast<size_t>(n)});
        }
    }
    // Waits (at most `ms`) for the host to close the port, dropping frames.
    void wait_closed(int ms) {
        for (int waited = 0; waited < ms; waited += 100) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) > 0) {
                char buf[4096];
                ssize_t n = ::read(fd_, buf, sizeof buf);
                if (n == 0 || (n < 0 && errno != EINTR)) return;
            }
        }
    }
    // Whole frames already read (with the Run frame, say) but not taken.
    void take_buffered(std::vector<Frame>& out) {
        while (auto f = dec_.next()) out.push_back(std::move(*f));
    }
    // What one read gives (for the poll loop); false at EOF.
    bool pump(std::vector<Frame>& out) {
        char buf[65536];
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
        if (n <= 0) {
            say(n == 0 ? "the host closed the agent port" : std::string("read the agent port: ") + std::strerror(errno));
            return false;
        }
        dec_.feed({buf, static_cast<size_t>(n)});
        while (auto f = dec_.next()) out.push_back(std::move(*f));
        return true;
    }

private:
    void write_all(const std::string& s) {
        for (size_t off = 0; off < s.size();) {
            ssize_t n = ::write(fd_, s.data() + off, s.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("write", "the agent port");
            off += static_cast<size_t>(n);
        }
    }
    int fd_;
    Decoder dec_;
};

// execvp's search, in the container's PATH (ours is not its).
std::string resolve(const std::string& cmd, const std::vector<std::string>& env) {
    if (cmd.find('/') != std::string::npos) return cmd;
    std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const auto& e : env)
        if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
    size_t start = 0;
    for (;;) {
        size_t end = path.find(':', start);
        std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        std::string cand = (dir.empty() ? "." : dir) + "/" + cmd;
        if (::access(cand.c_str(), X_OK) == 0) return cand;
        if (end == std::string::npos) return cmd;
        start = end + 1;
    }
}

// Enters the running container of `pid` (an exec): its mount, uts and ipc
// namespaces and its root. Returns an error message, empty on success.
std::string join_container(pid_t pid) {
    const std::string proc = "/proc/" + std::to_string(pid);
    int root = ::open((proc + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return "the container's root: " + std::string(std::strerror(errno));
    for (const char* ns : {"ipc", "uts", "mnt"}) {
        int fd = ::open((proc + "/ns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::setns(fd, 0) < 0) return std::string("join the container's ") + ns + " namespace: " + std::strerror(errno);
        ::close(fd);
    }
    if (::fchdir(root) < 0 || ::chroot(".") < 0) return std::string("chroot: ") + std::strerror(errno);
    ::close(root);
    return "";
}

// The container's volumes, in its mount namespace: virtiofs shares by tag
// and tmpfs, their mount points made as needed (in the guest: what the
// rootfs's symlinks can reach is the guest's, not the host's). Returns an
// error message, empty on success.
std::string mount_volumes(const json& run) {
    for (const json& m : run.value("mounts", json::array())) {
        const std::string dst = std::string(kRootfs) + m.value("destination", "/");
        for (size_t i = std::string(kRootfs).size() + 1; i <= dst.size(); ++i)
            if (i == dst.size() || dst[i] == '/') ::mkdir(dst.substr(0, i).c_str(), 0755);
        const unsigned long ro = m.value("readonly", false) ? MS_RDONLY : 0;
        const std::string type = m.value("type", ""), data = m.value("data", "");
        int rc = type == "virtiofs" ? ::mount(m.value("tag", "").c_str(), dst.c_str(), "virtiofs", ro, nullptr)
                                    : ::mount("tmpfs", dst.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | ro,
                                              data.empty() ? nullptr : data.c_str());
        if (rc < 0) return "mount the volume at " + m.value("destination", "") + ": " + std::strerror(errno);
    }
    return "";
}

// A process of the container (in the forked child). The container's own
// (join == 0) gets its own mount, uts and ipc namespaces inside the guest
// too, and the rootfs as /; an exec's (join: the container's process)
// enters those. Then the user's ids, cwd and command.
[[noreturn]] void exec_process(const json& run, int in, int out, int err, pid_t join) {
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    auto fail = [](int code, const std::string& what) {
        std::fprintf(stderr, "vitro: %s\n", what.c_str());
        ::_exit(code);
    };
    ::setsid();
    if (join > 0) {
        if (std::string e = join_container(join); !e.empty()) fail(125, e);
    } else {
        if (::unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) < 0) fail(125, std::string("unshare: ") + std::strerror(errno));
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
        std::string hostname = run.value("hostname", "");
        if (!hostname.empty()) ::sethostname(hostname.data(), hostname.size());
        struct M { const char *src, *dst, *type; unsigned long flags; };
        for (const M& m : {M{"proc", "/rootfs/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC},
                           M{"sysfs", "/rootfs/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC},
                           M{"devtmpfs", "/rootfs/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC}})
            if (::mount(m.src, m.dst, m.type, m.flags, nullptr) < 0 && errno != ENOENT)
                fail(125, std::string("mount ") + m.dst + ": " + std::strerror(errno));
        if (std::string e = mount_volumes(run); !e.empty()) fail(125, e);
        if (::chroot(kRootfs) < 0 || ::chdir("/") < 0) fail(125, std::string("chroot: ") + std::strerror(errno));
    }
    std::string cwd = run.value("cwd", "/");
    if (::chdir(cwd.c_str()) < 0) fail(125, "chdir " + cwd + ": " + std::strerror(errno));
    std::vector<gid_t> gids = run.value("gids", std::vector<gid_t>{});
    if (::setgroups(gids.size(), gids.data()) < 0 || ::setgid(run.value("gid", 0u)) < 0 ||
        ::setuid(run.value("uid", 0u)) < 0)
        fail(125, std::string("set user: ") + std::strerror(errno));
    std::vector<std::string> args = run.value("args", std::vector<std::string>{});
    std::vector<std::string> env = run.value("env", std::vector<std::string>{});
    if (args.empty()) fail(125, "no command to run");
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string exe = resolve(args[0], env);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(exe.c_str(), argv.data(), envp.data());
    int e = errno;
    fail(e == ENOENT ? 127 : 126, "exec: \"" + args[0] + "\": " + std::strerror(e));
    ::_exit(127);
}

// One process the agent runs and relays: the container's (session 0) or
// an exec's. Its stdin is written without blocking, with what it cannot take
// yet held here: a process that does not read its stdin must not stop its
// output (or another session's) being relayed.
struct Proc {
    pid_t pid = -1;
    int in_w = -1, out_r = -1, err_r = -1;
    std::string in_pending;
    bool in_eof = false;
    std::optional<int> code;
    bool done() const { return code && out_r < 0 && err_r < 0; }

    void start(const json& run, pid_t join) {
        int in[2], out[2], err[2];
        if (::pipe2(in, O_CLOEXEC) < 0 || ::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0) throw_errno("pipe");
        pid = ::fork();
        if (pid < 0) throw_errno("fork");
        if (pid == 0) exec_process(run, in[0], out[1], err[1], join);
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        in_w = in[1];
        out_r = out[0];
        err_r = err[0];
        ::fcntl(in_w, F_SETFL, O_NONBLOCK);
    }
    void flush_in() {
        if (code) in_pending.clear();  // nobody left to read it
        while (in_w >= 0 && !in_pending.empty()) {
            ssize_t n = ::write(in_w, in_pending.data(), in_pending.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n < 0) {  // the process closed its stdin: what is left is dropped
                in_pending.clear();
                break;
            }
            in_pending.erase(0, static_cast<size_t>(n));
        }
        if (in_eof && in_pending.empty() && in_w >= 0) {
            ::close(in_w);
            in_w = -1;
        }
    }
    // One read of an output pipe, sent as `t`; the pipe closes at its end.
    void relay(Port& port, int& fd, FrameType t, uint8_t session) {
        char buf[65536];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) port.send(t, {buf, static_cast<size_t>(n)}, session);
        else if (n == 0 || errno != EINTR) {
            ::close(fd);
            fd = -1;
        }
    }
};

// Runs `run` as session 0 and, while it runs, the execs the host asks for,
// relaying stdio and signals, until every process is gone and its output
// read; returns session 0's exit code (128 + signal when killed).
int supervise(Port& port, const json& run) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    std::map<uint8_t, Proc> procs;
    procs[0].start(run, 0);
    const pid_t init = procs[0].pid;
    auto handle = [&](const std::vector<Frame>& frames) {
        for (const auto& f : frames) {
            if (f.type == FrameType::Exec) {
                if (procs.count(f.session) || procs[0].code) {
                    port.send(FrameType::Stderr, "vitro: the container is not running, or session " +
                                                     std::to_string(f.session) + " is taken\n", f.session);
                    port.send_u32(FrameType::Exit, 126, f.session);
                    continue;
                }
                json exec = json::parse(f.payload, nullptr, false);
                if (!exec.is_object()) exec = json::object();  // its empty args fail in the child, saying so
                procs[f.session].start(exec, init);
                continue;
            }
            auto it = procs.find(f.session);
            if (it == procs.end()) continue;  // a session that has ended
            Proc& p = it->second;
            if (f.type == FrameType::Stdin && p.in_w >= 0 && !p.in_eof) p.in_pending += f.payload;
            else if (f.type == FrameType::StdinEof) p.in_eof = true;
            else if (f.type == FrameType::Signal && !p.code) ::kill(p.pid, static_cast<int>(payload_u32(f, "signal")));
        }
    };
    std::vector<Frame> early;
    port.take_buffered(early);
    handle(early);
    for (auto& [s, p] : procs) p.flush_in();
    for (;;) {
        // The exec sessions that are over say so and go.
        for (auto it = procs.begin(); it != procs.end();) {
            if (it->first != 0 && it->second.done()) {
                port.send_u32(FrameType::Exit, static_cast<uint32_t>(*it->second.code), it->first);
                if (it->second.in_w >= 0) ::close(it->second.in_w);
                it = procs.erase(it);
            } else {
                ++it;
            }
        }
        if (procs.size() == 1 && procs[0].done()) break;
        // The port is not read while a stdin holds a backlog: the host waits
        // (flow control) instead of these buffers growing.
        bool backlog = false;
        std::vector<pollfd> pfds = {{-1, POLLIN, 0}, {sfd, POLLIN, 0}};
        for (auto& [s, p] : procs) {
            backlog |= !p.in_pending.empty();
            pfds.push_back({p.out_r, POLLIN, 0});
            pfds.push_back({p.err_r, POLLIN, 0});
            pfds.push_back({p.in_pending.empty() ? -1 : p.in_w, POLLOUT, 0});
        }
        pfds[0].fd = backlog ? -1 : port.fd();
        if (::poll(pfds.data(), pfds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        size_t i = 2;
        for (auto& [s, p] : procs) {
            if (p.out_r >= 0 && (pfds[i].revents & (POLLIN | POLLHUP))) p.relay(port, p.out_r, FrameType::Stdout, s);
            if (p.err_r >= 0 && (pfds[i + 1].revents & (POLLIN | POLLHUP))) p.relay(port, p.err_r, FrameType::Stderr, s);
            i += 3;
        }
        if (pfds[1].revents & POLLIN) {
            signalfd_siginfo si;
            while (::read(sfd, &si, sizeof si) == sizeof si) {
            }
            int status;
            pid_t w;
            while ((w = ::waitpid(-1, &status, WNOHANG)) > 0)  // pid 1 reaps every orphan
                for (auto& [s, p] : procs)
                    if (p.pid == w) p.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            // The container ends with its init, as in a pid namespace: what
            // it left (holding its output open, maybe), execs too, go with it.
            if (procs[0].code) ::kill(-1, SIGKILL);
        }
        if (pfds[0].revents & (POLLIN | POLLHUP)) {
            std::vector<Frame> frames;
            if (!port.pump(frames)) power_off();  // the host is gone
            handle(frames);
        }
        for (auto& [s, p] : procs) p.flush_in();
    }
    if (procs[0].in_w >= 0) ::close(procs[0].in_w);
    return *procs[0].code;
}

}  // namespace

int main() {
    if (::getpid() != 1) {
        say("runs as pid 1 of a vitro microVM only");
        return 2;
    }
    int code = 125;
    try {
        mount_or_throw("devtmpfs", "/dev", "devtmpfs", MS_NOSUID);
        // The initramfs has no /dev/console, so the kernel gave us no fds
        // 0-2: the console (the VM's serial log) takes them, before any fd
        // of ours (the port, the pipes) could land there and be written to.
        for (int fd = 0; fd < 3; ++fd)
            if (::fcntl(fd, F_GETFD) < 0 && ::open("/dev/console", O_RDWR) != fd) ::open("/dev/null", O_RDWR);
        mount_or_throw("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
        mount_or_throw("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC);
        load_modules();
        int fd = ::open(find_port().c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) throw_errno("open", "the agent port");
        Port port(fd);
        utsname u{};
        ::uname(&u);
        port.send(FrameType::Hello, json{{"version", kProtocolVersion}, {"kernel", u.release}}.dump());
        auto f = port.receive();
        if (!f) power_off();
        if (f->type != FrameType::Run) throw Error(EPROTO, "the host's first frame is not Run");
        json run = json::parse(f->payload);
        try {
            mount_or_throw(run.value("rootfs_tag", "rootfs").c_str(), kRootfs, "virtiofs", 0);
            code = supervise(port, run);
        } catch (const std::exception& e) {
            port.send(FrameType::Stderr, std::string("vitro: in the VM: ") + e.what() + "\n");
        }
        ::sync();  // what the container wrote is on the host before it hears of the exit
        port.send_u32(FrameType::Exit, static_cast<uint32_t>(code));
        // The host ends the VM once it has the exit frame. Powering off
        // first could lose the frames QEMU still queues for a slow host.
        port.wait_closed(10000);
    } catch (const std::exception& e) {
        say(e.what());
    }
    power_off();
}
