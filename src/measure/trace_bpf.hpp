// The BPF tracer: loads netlat.bpf.c (embedded in the binary), attaches it to
// the net tracepoints, and drains its ring buffer on request. Links are
// fd-based and never pinned: they go when this object goes, or when the
// process dies, however it dies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bpf/object.hpp"
#include "measure/trace_event.hpp"

struct ring_buffer;

namespace vitro::measure {

class BpfTracer : public Tracer {
public:
    struct Config {
        uint16_t icmp_id = 0;
        uint16_t alt_id = 0;         // a second identifier, 0 = none
        uint32_t ns_container = 0;   // record only these two namespaces (0: all)
        uint32_t ns_host = 0;
        bool all_hops = false;       // every device on the path, not just the 4 edges
    };
    // Loads the programs for `cfg`. Throws with a clear reason when BPF is
    // unavailable.
    explicit BpfTracer(const Config& cfg);
    ~BpfTracer() override;
    BpfTracer(const BpfTracer&) = delete;
    BpfTracer& operator=(const BpfTracer&) = delete;

    void attach();
    void detach();
    bool attached() const { return !links_.empty(); }
    // Appends every event in the ring buffer to `out` (one batch, no wait).
    void drain(std::vector<TraceEvent>& out);
    // Events lost because the ring buffer was full.
    uint64_t dropped() const override;
    void collect(const ProbeResult&, uint16_t, std::vector<TraceEvent>& out) override { drain(out); }
    const char* kind() const override { return "bpf"; }

private:
    struct RingFree { void operator()(ring_buffer* r) const; };
    bpf::Object obj_;
    std::vector<bpf::Link> links_;
    std::unique_ptr<ring_buffer, RingFree> ring_;
    std::vector<TraceEvent>* sink_ = nullptr;
};

}  // namespace vitro::measure
