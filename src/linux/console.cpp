#include "linux/console.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "util/error.hpp"

namespace vitro::os {

Pty open_pty() {
    Pty p;
    p.master.reset(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!p.master) throw_errno("open", "/dev/ptmx");
    int unlock = 0;
    if (::ioctl(p.master.get(), TIOCSPTLCK, &unlock) < 0) throw_errno("unlock pty");
    // TIOCGPTPEER opens the slave through the master: no path lookup to race.
    int slave = ::ioctl(p.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) throw_errno("open pty slave");
    p.slave.reset(slave);
    int n = 0;
    if (::ioctl(p.master.get(), TIOCGPTN, &n) < 0) throw_errno("get pty number");
    p.slave_name = "/dev/pts/" + std::to_string(n);
    return p;
}

void set_window_size(int fd, unsigned rows, unsigned cols) {
    winsize ws{};
    ws.ws_row = static_cast<unsigned short>(rows);
    ws.ws_col = static_cast<unsigned short>(cols);
    if (::ioctl(fd, TIOCSWINSZ, &ws) < 0) throw_errno("set terminal size");
}

void become_tty_session(int slave) {
    if (::setsid() < 0 && errno != EPERM) throw_errno("setsid");
    if (::ioctl(slave, TIOCSCTTY, 0) < 0) throw_errno("set controlling terminal");
    for (int i = 0; i < 3; ++i)
        if (::dup2(slave, i) < 0) throw_errno("dup2 terminal");
}

UniqueFd connect_unix(const std::string& path) {
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) throw_errno("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw Error("console socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        throw_errno("connect to console socket", path);
    return s;
}

void proxy_terminal(int master, int pidfd) {
    termios saved{};
    bool raw = ::isatty(0) && ::tcgetattr(0, &saved) == 0;
    if (raw) {
        termios t = saved;
        cfmakeraw(&t);
        ::tcsetattr(0, TCSANOW, &t);
        winsize ws{};
        if (::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
    }
    bool in_open = true;
    char buf[8192];
    for (;;) {
        pollfd fds[3] = {{master, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}, {pidfd, POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::read(master, buf, sizeof buf);
            if (n <= 0) break;  // EIO: the last slave fd closed
            for (ssize_t off = 0; off < n;) {
                ssize_t w = ::write(1, buf + off, static_cast<size_t>(n - off));
                if (w <= 0) break;
                off += w;
            }
            continue;
        }
        if (fds[1].revents & (POLLIN | POLLHUP)) {
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n <= 0) in_open = false;
            else if (::write(master, buf, static_cast<size_t>(n)) < 0) in_open = false;
        }
        if (fds[2].revents & POLLIN) {
            // The process is gone; drain what is still buffered, then stop.
            ::fcntl(master, F_SETFL, O_NONBLOCK);
            ssize_t n;
            while ((n = ::read(master, buf, sizeof buf)) > 0)
                if (::write(1, buf, static_cast<size_t>(n)) < 0) break;
            break;
        }
    }
    if (raw) ::tcsetattr(0, TCSANOW, &saved);
}

}  // namespace vitro::os
