#include "vm/shim.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "vm/protocol.hpp"

namespace vitro::vm {

using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::write(fd, s.data(), s.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("write");
        s.remove_prefix(static_cast<size_t>(n));
    }
}

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw Error(ENAMETOOLONG, "socket path " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

UniqueFd listen_unix(const std::string& path, int backlog) {
    sockaddr_un addr = unix_address(path);
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) throw_errno("socket");
    ::unlink(path.c_str());
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) throw_errno("bind", path);
    if (::listen(s.get(), backlog) < 0) throw_errno("listen", path);
    return s;
}

UniqueFd connect_unix(const std::string& path) {
    sockaddr_un addr = unix_address(path);
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) throw_errno("socket");
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) throw_errno("connect", path);
    return s;
}

// A `vitro exec` connected to the shim's exec socket: the same frames, its
// process's session being 0 on this connection and `session` to the agent.
struct ExecClient {
    UniqueFd fd;
    Decoder dec;
};

class Session {
public:
    Session(const ShimRequest& req, Vmm& vmm, int sigfd) : req_(req), vmm_(vmm), sigfd_(sigfd) {}

    // Waits for QEMU to connect the agent port and the agent to say hello.
    void boot(int listen_fd) {
        deadline_ = Clock::now() + std::chrono::milliseconds(req_.boot_timeout_ms);
        while (!conn_) {
            wait_readable(listen_fd, "connect its agent port");
            conn_ = UniqueFd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
            if (!conn_ && errno != EINTR && errno != EAGAIN) throw_errno("accept", "the agent socket");
        }
        for (;;) {
            if (auto f = dec_.next()) {
                if (f->type != FrameType::Hello) throw Error(EPROTO, "the agent's first frame is not its hello");
                json h = json::parse(f->payload, nullptr, false);
                if (!h.is_object() || h.value("version", 0) != kProtocolVersion)
                    throw Error(EPROTO, "the agent's hello is not protocol version " + std::to_string(kProtocolVersion));
                kernel_ = h.value("kernel", "");
                return;
            }
            wait_readable(conn_.get(), "say hello");
            if (!read_conn()) {
                vmm_.wait_qemu(1000);  // its console says why
                throw Error(ECONNRESET, "the VM closed the agent's port before the agent's hello: " + vmm_.diagnostics());
            }
        }
    }

    void send(FrameType t, std::string_view payload) { write_all(conn_.get(), encode(t, payload)); }

    // Relays until the exit frame; the process's exit code. The agent's port
    // is written without blocking (what it cannot take waits in out_, and
    // stdin is not read meanwhile): a shim blocked writing stdin while the
    // agent blocks writing output would wait forever.
    // Execs connect to `exec_listener` meanwhile: each gets a session of
    // its own (1-255) until the agent says its process exited.
    int relay(int exec_listener) {
        bool stdin_open = true;
        ::fcntl(conn_.get(), F_SETFL, ::fcntl(conn_.get(), F_GETFL) | O_NONBLOCK);
        for (;;) {
            while (auto f = dec_.next()) {
                if (f->type != FrameType::Stdout && f->type != FrameType::Stderr && f->type != FrameType::Exit)
                    throw Error(EPROTO, "the agent sent a frame of type " + std::to_string(static_cast<int>(f->type)) +
                                            " while running");
                if (f->session != 0) {
                    to_exec(*f);
                    continue;
                }
                if (f->type == FrameType::Exit) return static_cast<int>(payload_u32(*f, "exit") & 0xff);
                write_out(f->type == FrameType::Stdout ? 1 : 2, f->payload);
            }
            const bool read_stdin = stdin_open && out_.empty();
            std::vector<pollfd> p = {{conn_.get(), static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0},
                                     {sigfd_, POLLIN, 0},
                                     {read_stdin ? 0 : -1, POLLIN, 0},
                                     {exec_listener, POLLIN, 0}};
            std::vector<uint8_t> polled;
            for (auto& [session, c] : execs_) {
                // Like stdin: not read while frames for the agent wait.
                p.push_back({c.fd && out_.empty() ? c.fd.get() : -1, POLLIN, 0});
                polled.push_back(session);
            }
            if (::poll(p.data(), p.size(), 200) < 0 && errno != EINTR) throw_errno("poll");
            if (p[1].revents & POLLIN) forward_signals();
            if (p[3].revents & POLLIN) accept_exec(exec_listener);
            for (size_t i = 0; i < polled.size(); ++i)
                if (p[4 + i].revents & (POLLIN | POLLHUP | POLLERR)) from_exec(polled[i]);
            if (read_stdin && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
                char buf[65536];
                ssize_t n = ::read(0, buf, sizeof buf);
                if (n > 0) out_ += encode(FrameType::Stdin, {buf, static_cast<size_t>(n)});
                else if (n == 0 || errno != EINTR) {
                    out_ += encode(FrameType::StdinEof, {});
                    stdin_open = false;
                }
            }
            flush();
            if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !read_conn()) {
                vmm_.wait_qemu(1000);  // its console says why
                throw Error(ECONNRESET, "the VM closed the agent's port without the container's exit status: " +
                                            vmm_.diagnostics());
            }
            if (vmm_.qemu_exited() && !(p[0].revents & POLLIN))
                throw Error(ECONNRESET, "the VM ended without the container's exit status: " + vmm_.diagnostics());
        }
    }

    const std::string& kernel() const { return kernel_; }

private:
    void accept_exec(int listener) {
        UniqueFd c(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) return;
        for (int s = 1; s <= 255; ++s)
            if (!execs_.count(static_cast<uint8_t>(s))) {
                execs_[static_cast<uint8_t>(s)].fd = std::move(c);
                return;
            }
        write_out(c.get(), encode(FrameType::Stderr, "vitro: 255 execs run in this container already\n") +
                               encode_u32(FrameType::Exit, 125));
    }

    // What an exec's client sends goes to the agent in its session; a
    // client that breaks the protocol, or leaves, is dropped (its process
    // gets its stdin's end and runs on, as docker's detached execs do).
    void from_exec(uint8_t session) {
        ExecClient& c = execs_[session];
        char buf[65536];
        ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
        try {
            if (n <= 0) throw Error(ECONNRESET, "exec client gone");
            c.dec.feed({buf, static_cast<size_t>(n)});
            while (auto f = c.dec.next()) {
                if (f->type != FrameType::Exec && f->type != FrameType::Stdin && f->type != FrameType::StdinEof &&
                    f->type != FrameType::Signal)
                    throw Error(EPROTO, "exec client frame type " + std::to_string(static_cast<int>(f->type)));
                out_ += encode(f->type, f->payload, session);
            }
        } catch (const Error&) {
            c.fd.reset();
            out_ += encode(FrameType::StdinEof, {}, session);
        }
    }

    // The agent's frames for an exec go to its client; its exit frame ends
    // the session. A client gone meanwhile misses them.
    void to_exec(const Frame& f) {
        auto it = execs_.find(f.session);
        if (it == execs_.end()) return;
        if (it->second.fd) write_out(it->second.fd.get(), encode(f.type, f.payload));
        if (f.type == FrameType::Exit) execs_.erase(it);
    }

    void wait_readable(int fd, const char* what) {
        for (;;) {
            if (vmm_.qemu_exited())
                throw Error(EIO, std::string("the VM exited before it could ") + what + ": " + vmm_.diagnostics());
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
            if (left <= 0)
                throw Error(ETIMEDOUT, "the VM did not " + std::string(what) + " within " +
                                           std::to_string(req_.boot_timeout_ms / 1000) + " s: " + vmm_.diagnostics());
            pollfd p[2] = {{fd, POLLIN, 0}, {sigfd_, POLLIN, 0}};
            if (::poll(p, 2, static_cast<int>(std::min<long>(left, 200))) < 0 && errno != EINTR) throw_errno("poll");
            if (p[1].revents & POLLIN) drain_signals();  // before the process runs, nothing to pass them to
            if (p[0].revents) return;
        }
    }

    // Writes what the port takes now of out_.
    void flush() {
        while (!out_.empty()) {
            ssize_t n = ::write(conn_.get(), out_.data(), out_.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n < 0) throw_errno("write", "the agent's port");
            out_.erase(0, static_cast<size_t>(n));
        }
    }

    bool read_conn() {
        char buf[65536];
        ssize_t n = ::read(conn_.get(), buf, sizeof buf);
        if (n < 0) return errno == EINTR || errno == EAGAIN;
        if (n == 0) return false;
        dec_.feed({buf, static_cast<size_t>(n)});
        return true;
    }

    void forward_signals() {
        signalfd_siginfo si{};
        while (::read(sigfd_, &si, sizeof si) == sizeof si)
            if (si.ssi_signo != SIGCHLD) out_ += encode_u32(FrameType::Signal, si.ssi_signo);
    }
    void drain_signals() {
        signalfd_siginfo si{};
        while (::read(sigfd_, &si, sizeof si) == sizeof si) {
        }
    }
    // The reader may be gone (a client killed): the container's output is
    // then dropped, not the container.
    static void write_out(int fd, std::string_view s) {
        try {
            write_all(fd, s);
        } catch (const Error&) {
            // The reader may be gone (a client killed): the output is dropped, not the container
        }
    }

    const ShimRequest& req_;
    Vmm& vmm_;
    int sigfd_;
    UniqueFd conn_;
    Decoder dec_;
    std::string out_;  // frames for the agent not written yet
    std::map<uint8_t, ExecClient> execs_;
    Clock::time_point deadline_;
    std::string kernel_;
};

}  // namespace

json process_of_spec(const json& spec) {
    const json& p = spec.at("process");
    json gids = json::array();
    if (p.contains("user") && p["user"].contains("additionalGids")) gids = p["user"]["additionalGids"];
    return {{"args", p.value("args", std::vector<std::string>{})},
            {"env", p.value("env", std::vector<std::string>{})},
            {"cwd", p.value("cwd", "/")},
            {"uid", p.contains("user") ? p["user"].value("uid", 0u) : 0u},
            {"gid", p.contains("user") ? p["user"].value("gid", 0u) : 0u},
            {"gids", gids},
            {"hostname", spec.value("hostname", "")},
            {"rootfs_tag", "rootfs"}};
}

int exec_in_vm(const std::string& run_dir, const json& process, bool detach) {
    UniqueFd sock = connect_unix(run_dir + "/exec.sock");
    write_all(sock.get(), encode(FrameType::Exec, process.dump()));
    if (detach) {
        write_all(sock.get(), encode(FrameType::StdinEof, {}));
        return 0;
    }
    Decoder dec;
    bool stdin_open = true;
    for (;;) {
        while (auto f = dec.next()) {
            if (f->type == FrameType::Exit) return static_cast<int>(payload_u32(*f, "exit") & 0xff);
            if (f->type != FrameType::Stdout && f->type != FrameType::Stderr)
                throw Error(EPROTO, "the VM's shim sent an exec a frame of type " +
                                        std::to_string(static_cast<int>(f->type)));
            write_all(f->type == FrameType::Stdout ? 1 : 2, f->payload);
        }
        pollfd p[2] = {{sock.get(), POLLIN, 0}, {stdin_open ? 0 : -1, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[65536];
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n > 0) write_all(sock.get(), encode(FrameType::Stdin, {buf, static_cast<size_t>(n)}));
            else if (n == 0 || errno != EINTR) {
                write_all(sock.get(), encode(FrameType::StdinEof, {}));
                stdin_open = false;
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[65536];
            ssize_t n = ::read(sock.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw Error(ECONNRESET, "the container's VM ended before the exec's exit status");
            dec.feed({buf, static_cast<size_t>(n)});
        }
    }
}

std::vector<VmShare> volumes_of_spec(const json& spec, const std::string& bundle, json& process) {
    static const std::set<std::string> agents_own = {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                                                     "/sys/fs/cgroup"};
    std::vector<VmShare> shares;
    json mounts = json::array();
    for (const json& m : spec.value("mounts", json::array())) {
        const std::string dst = m.value("destination", ""), type = m.value("type", ""), src = m.value("source", "");
        if (agents_own.count(dst)) continue;
        std::vector<std::string> opts = m.value("options", std::vector<std::string>{});
        auto has = [&](const char* o) { return std::find(opts.begin(), opts.end(), o) != opts.end(); };
        if (type == "tmpfs") {
            std::string data;
            for (const auto& o : opts)
                if (o.rfind("size=", 0) == 0 || o.rfind("mode=", 0) == 0) data += (data.empty() ? "" : ",") + o;
            mounts.push_back({{"type", "tmpfs"}, {"destination", dst}, {"data", data}, {"readonly", has("ro")}});
        } else if (type == "bind" || has("bind") || has("rbind")) {
            if (src.rfind(bundle + "/", 0) == 0) continue;
            struct stat st{};
            if (::stat(src.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
                throw Error(ENOTSUP, "volume " + src + ":" + dst +
                                         ": only directories can be shared with --isolation vm (virtiofs)");
            VmShare sh{"vol" + std::to_string(shares.size()), src, has("ro")};
            mounts.push_back({{"type", "virtiofs"}, {"tag", sh.tag}, {"destination", dst}, {"readonly", sh.readonly}});
            shares.push_back(std::move(sh));
        } else {
            throw Error(ENOTSUP, "mount " + dst + " of type " + type + " is not supported with --isolation vm");
        }
    }
    process["mounts"] = mounts;
    return shares;
}

void run_shim(const ShimRequest& req, int notify_fd) {
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, nullptr);
    int sigfd = ::signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
    auto notify = [&](const std::string& line) {
        if (notify_fd < 0) return;
        try {
            write_all(notify_fd, line + "\n");
        } catch (const Error&) {
            // The notified client may be gone: the container goes on
        }
        ::close(notify_fd);
        notify_fd = -1;
    };
    int code = 125;
    bool running = false;
    try {
        UniqueFd listener = listen_unix(req.run_dir + "/agent.sock", 1);
        UniqueFd exec_listener = listen_unix(req.run_dir + "/exec.sock", 16);
        std::vector<VmShare> shares = {{"rootfs", req.rootfs, false}};
        shares.insert(shares.end(), req.volumes.begin(), req.volumes.end());
        Vmm vmm(req.assets, req.shape, req.run_dir, shares, req.run_dir + "/agent.sock");
        Session s(req, vmm, sigfd);
        s.boot(listener.get());
        listener.reset();
        s.send(FrameType::Run, req.process.dump());
        running = true;
        notify("R");
        try {
            code = s.relay(exec_listener.get());
        } catch (const Error& e) {
            std::string msg = "vitro: container " + req.name + ": " + e.what() + "\n";
            (void)!::write(2, msg.data(), msg.size());
            code = 137;
        }
        // The exit frame is the last word: the VM goes now (the agent waits
        // for this instead of powering off, which could drop queued frames).
    } catch (const std::exception& e) {
        std::string msg = e.what();
        for (auto& c : msg)
            if (c == '\n') c = ' ';
        if (!running) notify("E microVM: " + msg);
        code = running ? 137 : 125;
    }
    ::_exit(code);
}

}  // namespace vitro::vm
