// vitro-agent: pid 1 of a microVM guest (--isolation vm). It loads the virtio
// modules, finds its virtio-serial port, says hello, and runs the one process
// the host asks for (vm/protocol.hpp) in the container's rootfs, shared from
// the host over virtiofs: its stdio and exit status travel as frames. When
// the process and everything it left are gone, it powers the VM off.
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
    void send(FrameType t, std::string_view payload) { write_all(encode(t, payload)); }
    void send_u32(FrameType t, uint32_t v) { write_all(encode_u32(t, v)); }
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

// The container's process (in the forked child): its own mount, uts and
// ipc namespaces inside the guest too, the rootfs as /, the user's ids.
[[noreturn]] void exec_process(const json& run, int in, int out, int err) {
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    auto fail = [](int code, const std::string& what) {
        std::fprintf(stderr, "vitro: %s\n", what.c_str());
        ::_exit(code);
    };
    ::setsid();
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
    if (::chroot(kRootfs) < 0 || ::chdir("/") < 0) fail(125, std::string("chroot: ") + std::strerror(errno));
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

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0) throw_errno("pipe");
        r = p[0];
        w = p[1];
    }
};

// Runs `run`, relaying stdio and signals, until the process is gone and its
// output read; returns its exit code (128 + signal when killed).
int supervise(Port& port, const json& run) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    Pipe in, out, err;
    pid_t child = ::fork();
    if (child < 0) throw_errno("fork");
    if (child == 0) exec_process(run, in.r, out.w, err.w);
    ::close(in.r);
    ::close(out.w);
    ::close(err.w);
    // Non-blocking, with what it cannot take yet held here: a process that
    // does not read its stdin must not stop its output being relayed.
    int in_w = in.w;
    ::fcntl(in_w, F_SETFL, O_NONBLOCK);
    std::string in_pending;
    bool in_eof = false;
    auto flush_in = [&] {
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
    };
    std::optional<int> code;
    bool out_open = true, err_open = true;
    auto handle = [&](const std::vector<Frame>& frames) {
        for (const auto& f : frames) {
            if (f.type == FrameType::Stdin && in_w >= 0 && !in_eof) {
                in_pending += f.payload;
            } else if (f.type == FrameType::StdinEof) {
                in_eof = true;
            } else if (f.type == FrameType::Signal && !code) {
                ::kill(child, static_cast<int>(payload_u32(f, "signal")));
            }
        }
    };
    std::vector<Frame> early;
    port.take_buffered(early);
    handle(early);
    flush_in();
    while (!code || out_open || err_open) {
        // The port is not read while stdin holds a backlog: the host waits
        // (flow control) instead of this buffer growing.
        const bool backlog = !in_pending.empty();
        pollfd p[5] = {{backlog ? -1 : port.fd(), POLLIN, 0}, {sfd, POLLIN, 0}, {out_open ? out.r : -1, POLLIN, 0},
                       {err_open ? err.r : -1, POLLIN, 0}, {backlog ? in_w : -1, POLLOUT, 0}};
        if (::poll(p, 5, -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        auto relay = [&](int fd, bool& open, FrameType t) {
            char buf[65536];
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n > 0) port.send(t, {buf, static_cast<size_t>(n)});
            else if (n == 0 || errno != EINTR) open = false;
        };
        if (out_open && (p[2].revents & (POLLIN | POLLHUP))) relay(out.r, out_open, FrameType::Stdout);
        if (err_open && (p[3].revents & (POLLIN | POLLHUP))) relay(err.r, err_open, FrameType::Stderr);
        if (p[1].revents & POLLIN) {
            signalfd_siginfo si;
            while (::read(sfd, &si, sizeof si) == sizeof si) {
            }
            int status;
            pid_t w;
            while ((w = ::waitpid(-1, &status, WNOHANG)) > 0)  // pid 1 reaps every orphan
                if (w == child) code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            // The container ends with its init, as in a pid namespace: what
            // it left (holding its output open, maybe) goes with it.
            if (code) ::kill(-1, SIGKILL);
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            std::vector<Frame> frames;
            if (!port.pump(frames)) power_off();  // the host is gone
            handle(frames);
        }
        if (code) in_pending.clear();  // nobody left to read it
        flush_in();
    }
    if (in_w >= 0) ::close(in_w);
    return *code;
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
