#include "introspect/metrics/scrape_ahead.hpp"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <chrono>

#include "util/time.hpp"

namespace vitro::introspect {

namespace {

constexpr double kLead = 0.9;         // collect at 90% of the interval after a scrape
constexpr double kMaxAge = 0.6;       // a collection older than 60% of the interval is collected again
constexpr double kMinInterval = 0.05; // closer scrapes (two scrapers at once) keep the interval seen before

}  // namespace

ScrapeAhead::ScrapeAhead(Collector& collector) : collector_(collector) {
    // The thread takes no process signals (SIGTERM must reach whoever waits
    // for it, not end the process here): it starts with all of them blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::jthread([this](std::stop_token st) { loop(st); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

ScrapeAhead::~ScrapeAhead() { stop(); }

void ScrapeAhead::stop() {
    thread_.request_stop();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::shared_ptr<const std::string> ScrapeAhead::collect() {
    std::lock_guard lk(collect_mu_);
    return std::make_shared<const std::string>(collector_.scrape());
}

std::shared_ptr<const std::string> ScrapeAhead::scrape() {
    const double now = clock_seconds(CLOCK_MONOTONIC);
    std::shared_ptr<const std::string> ready;
    {
        std::lock_guard lk(mu_);
        const double previous = last_scrape_;
        if (previous > 0 && now - previous >= kMinInterval) interval_ = now - previous;
        last_scrape_ = now;
        ++scrapes_;
        // Made after the previous scrape, and recently: not a stale one.
        if (ready_ && ready_at_ > previous && now - ready_at_ <= kMaxAge * interval_)
            ready = std::move(ready_);
        ready_.reset();
    }
    cv_.notify_all();
    if (ready) {
        ++served_ahead_;
        return ready;
    }
    ++collected_in_request_;
    return collect();
}

void ScrapeAhead::loop(std::stop_token st) {
    std::unique_lock lk(mu_);
    while (!st.stop_requested()) {
        // A scrape not yet prepared for, with an interval to plan by.
        if (!cv_.wait(lk, st, [&] { return interval_ > 0 && scrapes_ != prepared_for_; })) return;
        const uint64_t scrape = scrapes_;
        const double due = last_scrape_ + kLead * interval_;
        // Until it is due; a scrape meanwhile restarts the plan.
        const auto wait = std::chrono::duration<double>(std::max(0.0, due - clock_seconds(CLOCK_MONOTONIC)));
        if (cv_.wait_for(lk, st, wait, [&] { return scrapes_ != scrape; })) continue;
        if (st.stop_requested()) return;
        lk.unlock();
        auto text = collect();
        lk.lock();
        prepared_for_ = scrape;
        if (scrapes_ == scrape) {  // no scrape came while it was collected
            ready_ = std::move(text);
            ready_at_ = clock_seconds(CLOCK_MONOTONIC);
        }
    }
}

}  // namespace vitro::introspect
