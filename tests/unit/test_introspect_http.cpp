// introspect/http_server: the exporter's HTTP/1.1 server, its request parser
// and, over real loopback sockets, keep-alive (HTTP/1.0's too), pipelining,
// HEAD, errors, stop, and clients that connect and send little or nothing.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <functional>
#include <future>
#include <thread>

#include "introspect/metrics/http_server.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

using namespace vitro;
using namespace vitro::introspect;

namespace {
HttpParse http_parse(std::string_view in, HttpRequest& r, std::size_t& used) {
    std::string why;
    return parse_http_request(in, r, used, why);
}
}  // namespace

TEST(HttpParse, PrometheusRequest) {
    std::string in =
        "GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9323\r\nUser-Agent: Prometheus/2.42.0\r\n"
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
        "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\nGET / HTTP/1.1\r\n";
    HttpRequest r;
    std::size_t used = 0;
    ASSERT_EQ(http_parse(in, r, used), HttpParse::ok);
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.path, "/metrics");
    EXPECT_TRUE(r.keep_alive);
    EXPECT_TRUE(r.accepts_gzip);
    EXPECT_EQ(in.substr(used), "GET / HTTP/1.1\r\n");  // the pipelined next one, incomplete
    EXPECT_EQ(http_parse(in.substr(used), r, used), HttpParse::incomplete);
}

TEST(HttpParse, ConnectionAndEncoding) {
    HttpRequest r;
    std::size_t used = 0;
    ASSERT_EQ(http_parse("GET / HTTP/1.0\n\n", r, used), HttpParse::ok);  // bare LFs, as typed by hand
    EXPECT_FALSE(r.keep_alive);
    EXPECT_EQ(used, 16u);
    EXPECT_TRUE(r.http10);
    ASSERT_EQ(http_parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", r, used), HttpParse::ok);
    EXPECT_TRUE(r.keep_alive);
    EXPECT_TRUE(r.http10);
    ASSERT_EQ(http_parse("HEAD / HTTP/1.1\r\nconnection: TE, close\r\naccept-encoding: br, gzip;q=0\r\n\r\n", r, used),
              HttpParse::ok);
    EXPECT_EQ(r.method, "HEAD");
    EXPECT_FALSE(r.keep_alive);
    EXPECT_FALSE(r.accepts_gzip);
    ASSERT_EQ(http_parse("GET / HTTP/1.1\r\nAccept-Encoding: deflate, gzip;q=0.8\r\nContent-Length: 0\r\n\r\n", r, used),
              HttpParse::ok);
    EXPECT_TRUE(r.accepts_gzip);
    EXPECT_FALSE(r.http10);
}

// HTTP/1.0 closes unless told otherwise: a kept-alive answer to a 1.0
// client says so (ab -k waits for the close without it); 1.1 says nothing.
TEST(HttpParse, ResponseHeadNamesTheConnection) {
    HttpResponse r{.body = std::make_shared<const std::string>("ok\n")};
    EXPECT_EQ(http_response_head(r, true, true),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
              "Connection: keep-alive\r\n\r\n");
    EXPECT_EQ(http_response_head(r, true, false),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\n");
    for (bool http10 : {true, false})
        EXPECT_NE(http_response_head(r, false, http10).find("\r\nConnection: close\r\n\r\n"), std::string::npos);
}

TEST(HttpParse, RefusesWhatItCannotServe) {
    HttpRequest r;
    std::size_t used = 0;
    for (const char* bad : {"GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n", "GET / HTTP/2.0\r\n\r\n",
                            "G(T / HTTP/1.1\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
                            "GET / HTTP/1.1\r\n: empty name\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
        std::string why;
        EXPECT_EQ(parse_http_request(bad, r, used, why), HttpParse::bad) << bad;
        EXPECT_FALSE(why.empty()) << bad;
    }
    EXPECT_EQ(http_parse("GET / HTTP/1.1\r\nHost: x\r\n", r, used), HttpParse::incomplete);
    EXPECT_EQ(http_parse("", r, used), HttpParse::incomplete);
}

namespace {
// More than loopback's socket buffers hold: its answer stays being written
// while the client does not read.
std::shared_ptr<const std::string> big_body() {
    static const auto body = std::make_shared<const std::string>(std::size_t{32} << 20, 'b');
    return body;
}

// A server on a free loopback port, run on a thread for the test's length.
struct ServedHttp {
    std::function<void()> on_slow;  // what GET /slow does before its answer
    HttpServer server{[this](const HttpRequest& r) {
        if (r.path == "/boom") throw Error("collection failed");
        if (r.path == "/slow") {
            on_slow();
            return HttpResponse{.body = std::make_shared<const std::string>("slow\n")};
        }
        if (r.path == "/big") return HttpResponse{.body = big_body()};
        if (r.path != "/x") return HttpResponse{.status = 404, .body = std::make_shared<const std::string>("no\n")};
        return HttpResponse{.body = std::make_shared<const std::string>(std::string(300000, 'x'))};  // over a socket buffer
    }};
    int port = server.bind("127.0.0.1", 0);
    std::thread t{[this] { server.run(); }};
    ~ServedHttp() {
        server.stop();
        t.join();
    }
    UniqueFd connect() const {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw Error(errno, "connect");
        // A bound for a hang only: a read that waits this long fails the test.
        timeval hang{.tv_sec = 30, .tv_usec = 0};
        ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &hang, sizeof hang);
        return s;
    }
};

void http_send_all(int fd, std::string_view s) { ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size())); }

// Reads until the peer closes, or `want` bytes came (or the hang bound
// passed: `closed` tells).
std::string http_read(int fd, std::size_t want = SIZE_MAX, bool* closed = nullptr) {
    std::string out;
    char buf[65536];
    if (closed) *closed = false;
    while (out.size() < want) {
        ssize_t n = ::recv(fd, buf, std::min(sizeof buf, want - out.size()), 0);
        if (n == 0 && closed) *closed = true;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

// One response whose head names its Content-Length: head and body, read
// exactly (the connection may stay open).
std::string http_read_response(int fd) {
    std::string in;
    std::size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        std::string more = http_read(fd, 1);
        if (more.empty()) return in;
        in += more;
    }
    auto at = in.find("Content-Length: ");
    if (at == std::string::npos) return in;
    const std::size_t total = end + 4 + std::stoul(in.substr(at + 16));
    return in + http_read(fd, total - in.size());
}
}  // namespace

TEST(HttpServer, KeepAlivePipeliningAndHead) {
    ServedHttp s;
    auto c = s.connect();
    // Two requests in one write, then a HEAD that asks to close.
    http_send_all(c.get(), "GET /x HTTP/1.1\r\n\r\nGET /missing HTTP/1.1\r\n\r\nHEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n");
    std::string all = http_read(c.get());
    std::string first = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 300000\r\n\r\n";
    ASSERT_EQ(all.substr(0, first.size()), first);
    std::string rest = all.substr(first.size() + 300000);
    EXPECT_EQ(rest.find("HTTP/1.1 404 Not Found\r\n"), 0u) << rest.substr(0, 200);
    auto head = rest.find("HTTP/1.1 200 OK\r\n");
    ASSERT_NE(head, std::string::npos);
    // HEAD: the GET's headers (its length too), no body, and the connection closed after it.
    EXPECT_EQ(rest.substr(head),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 300000\r\n"
              "Connection: close\r\n\r\n");
}

TEST(HttpServer, BadRequestsGetAnAnswerAndAClose) {
    ServedHttp s;
    auto c = s.connect();
    http_send_all(c.get(), "garbage\r\n\r\n");
    std::string r = http_read(c.get());
    EXPECT_EQ(r.find("HTTP/1.1 400 Bad Request\r\n"), 0u) << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos);
    EXPECT_NE(r.find("bad request: the request line"), std::string::npos) << r;

    auto d = s.connect();
    http_send_all(d.get(), "DELETE /x HTTP/1.1\r\nConnection: close\r\n\r\n");
    std::string m = http_read(d.get());
    EXPECT_EQ(m.find("HTTP/1.1 405 Method Not Allowed\r\n"), 0u) << m;
    EXPECT_NE(m.find("Allow: GET, HEAD\r\n"), std::string::npos);

    auto e = s.connect();
    http_send_all(e.get(), "GET /" + std::string(10000, 'a'));  // no end of head in sight
    EXPECT_EQ(http_read(e.get()).find("HTTP/1.1 431 "), 0u);

    auto f = s.connect();  // a handler that throws: 503 with its message, the server serves on
    http_send_all(f.get(), "GET /boom HTTP/1.1\r\nConnection: close\r\n\r\n");
    std::string b = http_read(f.get());
    EXPECT_EQ(b.find("HTTP/1.1 503 "), 0u) << b;
    EXPECT_NE(b.find("collection failed"), std::string::npos);
}

TEST(HttpServer, AClientThatLeavesMidResponseDoesNotStopIt) {
    ServedHttp s;
    {
        auto c = s.connect();
        http_send_all(c.get(), "GET /x HTTP/1.1\r\n\r\n");
        http_read(c.get(), 1000);
    }  // closed with most of the body unread
    auto d = s.connect();
    http_send_all(d.get(), "GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(http_read(d.get()).find("HTTP/1.1 404 "), 0u);
}

TEST(HttpServer, IdleConnectionsDoNotLockAScraperOut) {
    ServedHttp s;
    std::vector<UniqueFd> idle;
    for (int i = 0; i < 80; ++i) idle.push_back(s.connect());  // more than the server keeps
    auto c = s.connect();
    http_send_all(c.get(), "GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(http_read(c.get()).find("HTTP/1.1 404 "), 0u);
}

// HTTP/1.0 without "Connection: keep-alive" is answered and closed; with
// it, the answer says keep-alive and the connection serves again; HTTP/1.1
// stays open unless the request says close.
TEST(HttpServer, KeepsAliveAsEachVersionAsks) {
    ServedHttp s;
    const std::string body(300000, 'x');
    {
        auto c = s.connect();
        http_send_all(c.get(), "GET /x HTTP/1.0\r\n\r\n");
        bool closed = false;
        std::string r = http_read(c.get(), SIZE_MAX, &closed);
        EXPECT_TRUE(closed) << "an HTTP/1.0 request without keep-alive: closed after its answer";
        EXPECT_EQ(r.find("HTTP/1.1 200 OK\r\n"), 0u);
        EXPECT_EQ(r.size() - r.find("\r\n\r\n") - 4, body.size());
    }
    {
        auto c = s.connect();
        for (int i = 0; i < 3; ++i) {
            http_send_all(c.get(), "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            std::string r = http_read_response(c.get());
            EXPECT_NE(r.find("\r\nContent-Length: 300000\r\n"), std::string::npos) << i;
            EXPECT_NE(r.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << i;
            EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4), body) << i;
        }
    }
    {
        auto c = s.connect();
        http_send_all(c.get(), "GET /x HTTP/1.1\r\n\r\n");
        std::string r = http_read_response(c.get());
        EXPECT_EQ(r.find("Connection:"), std::string::npos) << "1.1 is persistent without saying so";
        EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4), body);
        http_send_all(c.get(), "GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n");
        bool closed = false;
        r = http_read(c.get(), SIZE_MAX, &closed);
        EXPECT_EQ(r.find("HTTP/1.1 404 "), 0u) << "the same connection served again";
        EXPECT_TRUE(closed);
    }
}

// Connections that send nothing, or a request head a byte at a time
// (slowloris), more than the server keeps: a new client is still served,
// each time. Before, a full table of half-sent heads refused every new one.
TEST(HttpServer, SlowAndIdleConnectionsDoNotLockAClientOut) {
    ServedHttp s;
    std::vector<UniqueFd> slow, idle;
    for (int i = 0; i < 80; ++i) {
        slow.push_back(s.connect());
        http_send_all(slow.back().get(), "GET /x HTTP/1.1\r\nHost: a\r\n");
    }
    for (int i = 0; i < 60; ++i) idle.push_back(s.connect());
    for (int probe = 0; probe < 5; ++probe) {
        for (auto& c : slow) (void)::send(c.get(), "X", 1, MSG_NOSIGNAL);  // a trickle; some were closed
        auto c = s.connect();
        http_send_all(c.get(), "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
        std::string r = http_read(c.get());
        EXPECT_EQ(r.find("HTTP/1.1 200 OK\r\n"), 0u) << "probe " << probe << ": " << r.substr(0, 100);
        EXPECT_EQ(r.size() - std::min(r.size(), r.find("\r\n\r\n") + 4), 300000u) << "probe " << probe;
    }
}

// One thread serves: while a handler ran past the 3 s head deadline, a
// connection accepted before it sent a whole request. That request is
// answered; before, the deadline (from the accept) closed it unanswered.
TEST(HttpServer, ARequestThatCameWholeWhileAnotherWasServedIsAnswered) {
    ServedHttp s;
    std::promise<void> started;
    s.on_slow = [&] {
        started.set_value();
        std::this_thread::sleep_for(std::chrono::milliseconds(3500));  // past the head deadline
    };
    auto a = s.connect();  // accepted no later than b (the listen queue is in order)
    auto b = s.connect();
    http_send_all(b.get(), "GET /slow HTTP/1.1\r\nConnection: close\r\n\r\n");
    started.get_future().wait();
    http_send_all(a.get(), "GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(http_read(b.get()).find("HTTP/1.1 200 OK\r\n"), 0u);
    std::string r = http_read(a.get());
    EXPECT_EQ(r.find("HTTP/1.1 404 "), 0u) << "a whole request closed unanswered: \"" << r << "\"";
}

// At the connection limit a new client makes room by closing one waiting for
// a head, never one being answered, though that one sent the fewest bytes
// (before, its response was cut off).
TEST(HttpServer, MakingRoomSparesAResponseBeingWritten) {
    ServedHttp s;
    auto w = s.connect();
    http_send_all(w.get(), "GET /big HTTP/1.1\r\n\r\n");  // 21 bytes, the fewest here
    std::string got = http_read(w.get(), 1);  // answered: the rest waits in the server
    ASSERT_EQ(got, "H");
    std::vector<UniqueFd> heads;  // 62 half-sent heads, 100 bytes and more each
    for (int i = 0; i < 62; ++i) {
        heads.push_back(s.connect());
        http_send_all(heads.back().get(), "GET /x HTTP/1.1\r\nX-Pad: " + std::string(100, 'p') + "\r\n");
    }
    // Answered once the server has read what came before: then 64 are open.
    auto k = s.connect();
    http_send_all(k.get(), "GET /missing HTTP/1.1\r\nX-Pad: " + std::string(40, 'p') + "\r\n\r\n");
    EXPECT_EQ(http_read_response(k.get()).find("HTTP/1.1 404 "), 0u);
    auto n = s.connect();  // one more: room is made
    http_send_all(n.get(), "GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(http_read(n.get()).find("HTTP/1.1 404 "), 0u);
    got += http_read_response(w.get());
    auto end = got.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos) << got;
    EXPECT_EQ(got.size() - end - 4, big_body()->size()) << "the response being written was cut off";
}

TEST(HttpServer, BindErrorsNameTheAddress) {
    HttpServer a([](const HttpRequest&) { return HttpResponse{}; });
    int port = a.bind("127.0.0.1", 0);
    HttpServer b([](const HttpRequest&) { return HttpResponse{}; });
    try {
        b.bind("127.0.0.1", port);
        FAIL() << "a taken port was bound again";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("listen 127.0.0.1:" + std::to_string(port) + ": cannot bind: Address already in use"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(b.bind("example.org", 0), Error);
    EXPECT_GT(b.bind("localhost", 0), 0);
}
