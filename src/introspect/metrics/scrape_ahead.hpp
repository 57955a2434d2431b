// Scrapes collected ahead of time. Prometheus scrapes on a fixed interval, so
// the collection for the next scrape is made shortly before it is due (at 90%
// of the interval between the last two scrapes), on a thread of its own, and
// the scrape itself only sends the text: its latency is the send, not the
// reads of every container's cgroup and /proc files (cAdvisor, too, serves
// what its housekeeping collected). Each scrape gets a collection made after
// the one before it, never the same one twice; when none is ready (the first
// scrapes, an irregular scraper) it collects there and then. A collection is
// made for a scrape only once one came: nothing is read while nobody scrapes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "introspect/metrics/collector.hpp"

namespace vitro::introspect {

class ScrapeAhead {
public:
    explicit ScrapeAhead(Collector& collector);
    ~ScrapeAhead();
    ScrapeAhead(const ScrapeAhead&) = delete;
    ScrapeAhead& operator=(const ScrapeAhead&) = delete;

    // The text for one scrape (shared: it stays valid while it is sent).
    std::shared_ptr<const std::string> scrape();
    void stop();

    uint64_t served_ahead() const { return served_ahead_; }
    uint64_t collected_in_request() const { return collected_in_request_; }

private:
    void loop(std::stop_token st);
    std::shared_ptr<const std::string> collect();

    Collector& collector_;
    std::mutex collect_mu_;  // one collection at a time (the collector's files are one state)
    std::mutex mu_;          // the fields below
    std::condition_variable_any cv_;
    std::shared_ptr<const std::string> ready_;
    double ready_at_ = 0, last_scrape_ = 0, interval_ = 0;
    uint64_t scrapes_ = 0, prepared_for_ = 0;
    std::atomic<uint64_t> served_ahead_{0}, collected_in_request_{0};
    std::jthread thread_;
};

}  // namespace vitro::introspect
