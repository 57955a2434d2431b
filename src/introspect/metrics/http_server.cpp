#include "introspect/metrics/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "util/error.hpp"

namespace vitro::introspect {

namespace {

constexpr std::size_t kMaxHead = 8192;  // a scraper's request is ~200 bytes
constexpr std::size_t kMaxConns = 64;   // then one waiting for a head makes room (make_room)
// Kept alive between requests, or a reader that stopped reading a response.
constexpr auto kIdle = std::chrono::seconds(60);
// A request head, whole: from the connection's accept or the request's first
// byte. A scraper sends its head in one packet; a slowloris trickles it.
constexpr auto kHeadDeadline = std::chrono::seconds(3);

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// Calls f(token) for each comma-separated token of a header value (";params" kept).
template <typename F>
void each_token(std::string_view v, F f) {
    while (!v.empty()) {
        auto comma = v.find(',');
        f(trim_ows(v.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
    }
}

bool is_tchar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

const char* reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 431: return "Request Header Fields Too Large";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Error";
    }
}

}  // namespace

HttpParse parse_http_request(std::string_view in, HttpRequest& req, std::size_t& consumed, std::string& error) {
    // The head ends at the first empty line (CRLF, or a bare LF from hand-typed requests).
    std::size_t end = std::string_view::npos, pos = 0;
    while ((pos = in.find('\n', pos)) != std::string_view::npos) {
        std::size_t next = pos + 1;
        if (next < in.size() && in[next] == '\n') { end = next + 1; break; }
        if (next + 1 < in.size() && in[next] == '\r' && in[next + 1] == '\n') { end = next + 2; break; }
        if (next >= in.size() || (in[next] == '\r' && next + 1 >= in.size())) break;
        pos = next;
    }
    if (end == std::string_view::npos) return HttpParse::incomplete;
    std::string_view head = in.substr(0, end);
    auto bad = [&](std::string why) {
        error = std::move(why);
        return HttpParse::bad;
    };
    auto line_end = head.find('\n');
    std::string_view line = trim_ows(head.substr(0, line_end));
    head.remove_prefix(line_end + 1);

    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return bad("the request line must be METHOD TARGET HTTP/1.x");
    std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                     version = line.substr(sp2 + 1);
    if (method.empty() || !std::all_of(method.begin(), method.end(), is_tchar)) return bad("the method is not a token");
    if (target.empty() || target.front() != '/') return bad("the target must be a path beginning with /");
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return bad("only HTTP/1.0 and HTTP/1.1 are served");
    req = HttpRequest{};
    req.method = method;
    req.path = target.substr(0, target.find('?'));
    bool http10 = version == "HTTP/1.0", keep = false, close = false;

    while (!head.empty()) {
        auto nl = head.find('\n');
        std::string_view h = trim_ows(head.substr(0, nl));
        head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
        if (h.empty()) break;
        auto colon = h.find(':');
        if (colon == 0 || colon == std::string_view::npos) return bad("a header line has no name");
        std::string_view name = h.substr(0, colon), value = trim_ows(h.substr(colon + 1));
        if (!std::all_of(name.begin(), name.end(), is_tchar)) return bad("a header name is not a token");
        if (iequals(name, "Connection")) {
            each_token(value, [&](std::string_view t) {
                if (iequals(t, "close")) close = true;
                if (iequals(t, "keep-alive")) keep = true;
            });
        } else if (iequals(name, "Accept-Encoding")) {
            each_token(value, [&](std::string_view t) {
                auto semi = t.find(';');
                if (!iequals(trim_ows(t.substr(0, semi)), "gzip")) return;
                std::string_view params = semi == std::string_view::npos ? "" : t.substr(semi + 1);
                params = trim_ows(params);
                // "gzip;q=0" refuses it.
                req.accepts_gzip = !(params.size() >= 3 && (params.substr(0, 2) == "q=" || params.substr(0, 2) == "Q=") &&
                                     params.find_first_not_of("0.", 2) == std::string_view::npos);
            });
        } else if (iequals(name, "Transfer-Encoding")) {
            return bad("request bodies are not accepted");
        } else if (iequals(name, "Content-Length")) {
            if (value.find_first_not_of('0') != std::string_view::npos) return bad("request bodies are not accepted");
        }
    }
    req.keep_alive = !close && (!http10 || keep);
    req.http10 = http10;
    consumed = end;
    return HttpParse::ok;
}

std::string http_response_head(const HttpResponse& r, bool keep_alive, bool http10) {
    std::string h = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
    h += "Content-Type: " + r.content_type + "\r\n";
    h += "Content-Length: " + std::to_string(r.body ? r.body->size() : 0) + "\r\n";
    for (auto& [k, v] : r.headers) h += k + ": " + v + "\r\n";
    if (!keep_alive) h += "Connection: close\r\n";
    else if (http10) h += "Connection: keep-alive\r\n";
    h += "\r\n";
    return h;
}

struct HttpServer::Conn {
    UniqueFd fd;
    std::string in;
    std::string head;                          // response head still to send
    std::shared_ptr<const std::string> body;  // and its body
    std::size_t head_off = 0, body_off = 0;
    bool close_after = false;
    bool dead = false;    // closed at the end of this round
    bool served = false;  // a response was queued on it: it may idle between requests
    uint64_t received = 0;  // bytes it sent, over its life: the least is evicted first
    std::chrono::steady_clock::time_point opened;      // accepted: of those that sent as little, the oldest goes
    std::chrono::steady_clock::time_point since;       // last activity
    std::chrono::steady_clock::time_point head_since;  // accepted, or the first byte of the request in `in`
    bool writing() const { return head_off < head.size() || (body && body_off < body->size()); }
    // A head to answer (a request, a bad one or one too large) is in `in`.
    bool head_buffered() const {
        HttpRequest r;
        std::size_t used = 0;
        std::string why;
        return in.size() > kMaxHead || parse_http_request(in, r, used, why) != HttpParse::incomplete;
    }
    bool overdue(std::chrono::steady_clock::time_point now) const {
        if (writing() || (in.empty() && served)) return now - since > kIdle;
        // A head that came whole is answered, however long the server was busy
        // with others (one thread) before it could read it.
        return now - head_since > kHeadDeadline && !head_buffered();
    }
};

HttpServer::HttpServer(Handler handler) : handler_(std::move(handler)) {
    stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop_) throw Error(errno, "eventfd");
}

HttpServer::~HttpServer() = default;

int HttpServer::bind(const std::string& host, int port) {
    const std::string where = host + ":" + std::to_string(port);
    // Addresses only, no name lookup: the static exporter has no NSS modules
    // to load ("localhost" is the one name it knows).
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    const std::string addr = host == "localhost" ? "127.0.0.1" : host;
    if (::inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        len = sizeof *v4;
    } else if (::inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof *v6;
    } else {
        throw Error("listen " + where + ": \"" + host + "\" is not an IP address (e.g. 127.0.0.1, 0.0.0.0 or ::1)");
    }
    UniqueFd s(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s) throw Error(errno, "listen " + where + ": socket: " + std::strerror(errno));
    // SO_REUSEADDR only (not SO_REUSEPORT): a port another exporter holds must be an error.
    int yes = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(s.get(), SOMAXCONN) != 0)
        throw Error(errno, "listen " + where + ": cannot bind: " + std::strerror(errno));
    len = sizeof ss;
    ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    listen_ = std::move(s);
    return ntohs(ss.ss_family == AF_INET6 ? v6->sin6_port : v4->sin_port);
}

void HttpServer::stop() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_.get(), &one, sizeof one);
}

void HttpServer::accept_all() {
    for (;;) {
        UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!c) return;  // EAGAIN, or a connection reset before it was accepted
        if (!make_room()) continue;  // closes it
        auto conn = std::make_unique<Conn>();
        conn->fd = std::move(c);
        conn->opened = conn->since = conn->head_since = std::chrono::steady_clock::now();
        // A request already there counts for this one when room is made next.
        if (!on_readable(*conn)) continue;
        conns_.push_back(std::move(conn));
    }
}

// At the limit, of the connections waiting for a request head (idle, or
// trickling one), the one that has sent least (the oldest of those) is
// closed: a new client is served, and idle or trickling connections go before
// a scraper's, which sends a whole request each time. One being answered, or
// with a whole request to answer, is never closed for room: when all are,
// the new one is refused (false).
bool HttpServer::make_room() {
    std::size_t live = 0;
    Conn* least = nullptr;
    for (auto& k : conns_) {
        if (k->dead) continue;
        ++live;
        if (k->writing() || k->head_buffered()) continue;
        if (!least || k->received < least->received || (k->received == least->received && k->opened < least->opened))
            least = k.get();
    }
    if (live < kMaxConns) return true;
    if (least) least->dead = true;
    return least != nullptr;
}

void HttpServer::respond(Conn& c, const HttpResponse& r, bool head_only, bool keep_alive, bool http10) {
    c.head = http_response_head(r, keep_alive, http10);
    c.served = true;
    c.head_off = 0;
    c.body = head_only ? nullptr : r.body;
    c.body_off = 0;
    c.close_after = !keep_alive;
}

bool HttpServer::on_readable(Conn& c) {
    char buf[4096];
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c.since = std::chrono::steady_clock::now();
    if (c.in.empty() && c.served) c.head_since = c.since;  // a kept-alive connection's next request
    c.in.append(buf, static_cast<std::size_t>(n));
    c.received += static_cast<uint64_t>(n);
    return true;
}

bool HttpServer::on_writable(Conn& c) {
    auto send_part = [&](const std::string& s, std::size_t& off, int more) {
        while (off < s.size()) {
            ssize_t n = ::send(c.fd.get(), s.data() + off, s.size() - off, MSG_NOSIGNAL | more);
            if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
            off += static_cast<std::size_t>(n);
        }
        return 1;
    };
    // MSG_MORE only when body bytes follow: a corked head alone waits for the cork's timeout.
    int done = send_part(c.head, c.head_off, c.body && !c.body->empty() ? MSG_MORE : 0);
    if (done == 1 && c.body) done = send_part(*c.body, c.body_off, 0);
    if (done < 0) return false;
    c.since = std::chrono::steady_clock::now();
    if (done == 1) {
        c.body.reset();
        if (c.close_after) return false;
    }
    return true;
}

void HttpServer::serve_buffered(Conn& c) {
    // A pipelining client sends the next request before this answer: each
    // complete one is answered in turn, as far as the socket takes the replies.
    while (!c.dead && !c.writing() && !c.close_after && !c.in.empty()) {
        HttpRequest req;
        std::size_t used = 0;
        std::string why;
        switch (parse_http_request(c.in, req, used, why)) {
            case HttpParse::incomplete:
                if (c.in.size() <= kMaxHead) return;  // wait for the rest
                respond(c, {.status = 431, .body = std::make_shared<const std::string>("request head too large\n")},
                        false, false);
                break;
            case HttpParse::bad:
                respond(c, {.status = 400, .body = std::make_shared<const std::string>("bad request: " + why + "\n")},
                        false, false);
                break;
            case HttpParse::ok: {
                c.in.erase(0, used);
                if (!c.in.empty()) c.head_since = std::chrono::steady_clock::now();  // a pipelined next one
                bool head_only = req.method == "HEAD";
                HttpResponse r;
                if (req.method != "GET" && !head_only) {
                    r = {.status = 405, .body = std::make_shared<const std::string>("only GET and HEAD are served\n"),
                         .headers = {{"Allow", "GET, HEAD"}}};
                } else {
                    try {
                        r = handler_(req);
                    } catch (const std::exception& e) {
                        r = {.status = 503, .body = std::make_shared<const std::string>(std::string(e.what()) + "\n")};
                    }
                }
                respond(c, r, head_only, req.keep_alive, req.http10);
                break;
            }
        }
        // Most of a response goes out now; poll waits only for what the socket could not take.
        c.dead = !on_writable(c);
    }
}

void HttpServer::run() {
    std::vector<pollfd> fds;
    for (;;) {
        for (auto& c : conns_) serve_buffered(*c);
        std::erase_if(conns_, [](const std::unique_ptr<Conn>& c) { return c->dead; });
        fds.clear();
        fds.push_back({stop_.get(), POLLIN, 0});
        fds.push_back({listen_.get(), POLLIN, 0});
        for (auto& c : conns_) fds.push_back({c->fd.get(), static_cast<short>(c->writing() ? POLLOUT : POLLIN), 0});
        if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) throw Error(errno, "poll");
        if (fds[0].revents) return;
        if (fds[1].revents & POLLIN) accept_all();
        auto now = std::chrono::steady_clock::now();
        // accept_all may have added connections after the polled ones.
        for (std::size_t i = 0; i + 2 < fds.size(); ++i) {
            Conn& c = *conns_[i];
            short ev = fds[i + 2].revents;
            if (c.dead) continue;
            if (ev & (POLLERR | POLLNVAL)) c.dead = true;
            else if (ev & POLLOUT) c.dead = !on_writable(c);
            else if (ev & (POLLIN | POLLHUP)) c.dead = !on_readable(c);
            // Whether or not it sent something now: a trickle does not extend a head's deadline.
            if (!c.dead && c.overdue(now)) c.dead = true;
        }
    }
}

}  // namespace vitro::introspect
