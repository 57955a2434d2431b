// The exporter's HTTP side: /metrics (Prometheus text), /healthz and a
// landing page, served by HttpServer (one thread). /metrics sends what
// ScrapeAhead collected for it (collections are serialized: the collector's
// open files and history are one state).
#pragma once

#include <memory>
#include <string>

#include "introspect/metrics/collector.hpp"
#include "introspect/metrics/scrape_ahead.hpp"

namespace vitro::introspect {

struct ListenAddress {
    std::string host = "127.0.0.1";
    int port = 9323;  // 0: any free port
};
// "HOST:PORT", ":PORT" (all addresses) or "[v6]:PORT"; throws naming the input.
ListenAddress parse_listen_address(const std::string& text);

class MetricsServer {
public:
    // gzip: compress /metrics for clients that accept it (worth it only
    // across a slow network; on loopback it is most of a scrape's CPU).
    MetricsServer(Collector& collector, ListenAddress address, bool gzip = false);
    ~MetricsServer();
    // Binds the socket; throws "listen 127.0.0.1:9323: ..." when it cannot.
    void bind();
    int port() const { return port_; }
    // Serves until stop() (from any thread or a signal-waiting thread).
    void run();
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    ListenAddress address_;
    int port_ = 0;
};

}  // namespace vitro::introspect
