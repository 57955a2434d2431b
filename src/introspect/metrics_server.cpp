#include "introspect/metrics_server.hpp"

#include <sys/socket.h>

#include <charconv>

#include <httplib.h>

#include <cstring>

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

struct MetricsServer::Impl {
    explicit Impl(Collector& c) : ahead(c) {}
    ScrapeAhead ahead;
    httplib::Server server;
};

MetricsServer::MetricsServer(Collector& collector, ListenAddress address, bool gzip)
    : impl_(std::make_unique<Impl>(collector)), address_(std::move(address)) {
    auto& s = impl_->server;
    // Two workers: a scrape waits for another anyway; more threads only cost memory.
    s.new_task_queue = [] { return new httplib::ThreadPool(2); };
    s.set_keep_alive_max_count(100);
    // httplib's default adds SO_REUSEPORT, which lets a second exporter share
    // the port silently; a taken port must be an error.
    s.set_socket_options([](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    // httplib gzips any text/* body the client accepts gzip for, and Prometheus
    // always asks: on loopback that costs more CPU than the scrape itself.
    // Unless --gzip, the request's Accept-Encoding is dropped before routing
    // (the Request is httplib's own mutable object, passed here as const).
    if (!gzip)
        s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
            const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
            return httplib::Server::HandlerResponse::Unhandled;
        });
    s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        // Sent from the shared text itself: no copy of a large body per scrape.
        auto text = impl_->ahead.scrape();
        res.set_content_provider(text->size(), "text/plain; version=0.0.4; charset=utf-8",
                                 [text](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                                     return sink.write(text->data() + offset, length);
                                 });
    });
    collector.add_source([this](Exposition& e) {
        auto f = e.family("vitro_exporter_scrapes_served_total", MetricType::counter,
                          "Scrapes served, by whether their collection was made ahead of the scrape or in it");
        e.add(f, {{"collected", "ahead"}}, static_cast<double>(impl_->ahead.served_ahead()));
        e.add(f, {{"collected", "in_request"}}, static_cast<double>(impl_->ahead.collected_in_request()));
    });
    s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    s.Get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(
            "<html><head><title>vitro monitor</title></head><body><h1>vitro monitor</h1>"
            "<p><a href=\"/metrics\">Metrics</a></p></body></html>\n",
            "text/html");
    });
}

MetricsServer::~MetricsServer() = default;

namespace {
std::string reason() {
    return errno ? std::string(": ") + std::strerror(errno) : std::string(" (in use, or not an address of this host)");
}
}  // namespace

void MetricsServer::bind() {
    auto& s = impl_->server;
    const std::string where = address_.host + ":" + std::to_string(address_.port);
    errno = 0;
    if (address_.port == 0) {
        port_ = s.bind_to_any_port(address_.host);
        if (port_ <= 0) throw Error(errno, "listen " + where + ": cannot bind" + reason());
    } else {
        if (!s.bind_to_port(address_.host, address_.port))
            throw Error(errno, "listen " + where + ": cannot bind" + reason());
        port_ = address_.port;
    }
}

void MetricsServer::run() { impl_->server.listen_after_bind(); }

void MetricsServer::stop() {
    impl_->server.stop();
    impl_->ahead.stop();
}

}  // namespace vitro::introspect
