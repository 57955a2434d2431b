#include "introspect/metrics/metrics_server.hpp"

#include <zlib.h>

#include <charconv>

#include "introspect/metrics/http_server.hpp"
#include "util/error.hpp"

namespace vitro::introspect {

ListenAddress parse_listen_address(const std::string& text) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
        throw Error("listen address \"" + text + "\": expected HOST:PORT, e.g. 127.0.0.1:9323");
    ListenAddress a;
    a.host = text.substr(0, colon);
    if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
    if (a.host.empty()) a.host = "0.0.0.0";
    std::string port = text.substr(colon + 1);
    auto r = std::from_chars(port.data(), port.data() + port.size(), a.port);
    if (port.empty() || r.ec != std::errc() || r.ptr != port.data() + port.size() || a.port < 0 || a.port > 65535)
        throw Error("listen address \"" + text + "\": the port must be a number from 0 to 65535");
    return a;
}

namespace {

// gzip (RFC 1952) of `text` at a fast level: only for --gzip, across slow links.
std::shared_ptr<const std::string> gzipped(const std::string& text) {
    z_stream z{};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw Error("gzip: deflateInit2 failed");
    auto out = std::make_shared<std::string>(deflateBound(&z, text.size()), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    z.avail_in = static_cast<uInt>(text.size());
    z.next_out = reinterpret_cast<Bytef*>(out->data());
    z.avail_out = static_cast<uInt>(out->size());
    int rc = deflate(&z, Z_FINISH);
    out->resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw Error("gzip: deflate failed");
    return out;
}

std::shared_ptr<const std::string> shared_text(const char* s) { return std::make_shared<const std::string>(s); }

}  // namespace

struct MetricsServer::Impl {
    Impl(Collector& c, bool gzip) : ahead(c), gzip(gzip), server([this](const HttpRequest& r) { return handle(r); }) {}

    HttpResponse handle(const HttpRequest& req) {
        if (req.path == "/metrics") {
            // Sent from the collection's own text: no copy of a large body per scrape.
            HttpResponse r{.content_type = "text/plain; version=0.0.4; charset=utf-8", .body = ahead.scrape()};
            if (gzip && req.accepts_gzip) {
                r.body = gzipped(*r.body);
                r.headers.emplace_back("Content-Encoding", "gzip");
            }
            return r;
        }
        if (req.path == "/healthz") return {.body = shared_text("ok\n")};
        if (req.path == "/")
            return {.content_type = "text/html; charset=utf-8",
                    .body = shared_text("<html><head><title>vitro monitor</title></head><body><h1>vitro monitor</h1>"
                                        "<p><a href=\"/metrics\">Metrics</a></p></body></html>\n")};
        return {.status = 404, .body = shared_text("not found; the metrics are at /metrics\n")};
    }

    ScrapeAhead ahead;
    bool gzip;
    HttpServer server;
};

MetricsServer::MetricsServer(Collector& collector, ListenAddress address, bool gzip)
    : impl_(std::make_unique<Impl>(collector, gzip)), address_(std::move(address)) {
    collector.add_source([this](Exposition& e) {
        auto f = e.family("vitro_exporter_scrapes_served_total", MetricType::counter,
                          "Scrapes served, by whether their collection was made ahead of the scrape or in it");
        e.add(f, {{"collected", "ahead"}}, static_cast<double>(impl_->ahead.served_ahead()));
        e.add(f, {{"collected", "in_request"}}, static_cast<double>(impl_->ahead.collected_in_request()));
    });
}

MetricsServer::~MetricsServer() = default;

void MetricsServer::bind() { port_ = impl_->server.bind(address_.host, address_.port); }

void MetricsServer::run() { impl_->server.run(); }

void MetricsServer::stop() {
    impl_->server.stop();
    impl_->ahead.stop();
}

}  // namespace vitro::introspect
