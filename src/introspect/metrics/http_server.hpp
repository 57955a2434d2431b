// A small HTTP/1.1 server for the exporter: GET and HEAD, keep-alive, one
// thread and poll(2). Prometheus scrapes one request at a time; a general
// server (its thread pool, TLS and compression libraries) cost the exporter
// more memory than all the containers it watches. Idle or slow clients cannot
// lock a scraper out: a request head has seconds to arrive, and a new
// connection beyond the limit evicts, of those waiting for a head, the one
// that has sent least (never one being answered).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/fd.hpp"

namespace vitro::introspect {

struct HttpRequest {
    std::string method;       // "GET", "HEAD", ...
    std::string path;         // the target without its query string
    bool keep_alive = true;   // HTTP/1.1 unless "Connection: close"; 1.0 only with "keep-alive"
    bool http10 = false;      // an HTTP/1.0 request: a kept-alive answer says so
    bool accepts_gzip = false;
};

enum class HttpParse { incomplete, ok, bad };

// Parses one request head at the start of `in`. ok: `req` is filled and
// `consumed` is the head's length. bad: `error` says what was wrong (sent
// back as a 400). Request bodies are refused (nothing here takes one).
HttpParse parse_http_request(std::string_view in, HttpRequest& req, std::size_t& consumed, std::string& error);

struct HttpResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::shared_ptr<const std::string> body;  // shared: /metrics sends the collection's own text
    std::vector<std::pair<std::string, std::string>> headers;
};

// The status line and headers, Content-Length included, up to the blank line.
// Connection: close when not kept alive; keep-alive when kept alive for an
// HTTP/1.0 client (which otherwise waits for the close).
std::string http_response_head(const HttpResponse& r, bool keep_alive, bool http10 = false);

class HttpServer {
public:
    using Handler = std::function<HttpResponse(const HttpRequest&)>;
    explicit HttpServer(Handler handler);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and listens; returns the port (the chosen one for port 0).
    // Throws "listen HOST:PORT: cannot bind: ..." when it cannot.
    int bind(const std::string& host, int port);
    // Serves until stop(), which any thread may call.
    void run();
    void stop();

private:
    struct Conn;
    void accept_all();
    void serve_buffered(Conn& c);
    bool on_readable(Conn& c);  // false: close it
    bool on_writable(Conn& c);
    void respond(Conn& c, const HttpResponse& r, bool head_only, bool keep_alive, bool http10 = false);
    bool make_room();  // false: no room for one more

    Handler handler_;
    UniqueFd listen_;
    UniqueFd stop_;  // eventfd: stop() wakes run()
    std::vector<std::unique_ptr<Conn>> conns_;
};

}  // namespace vitro::introspect
