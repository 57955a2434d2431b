#include "iobench/fio_job.hpp"

#include <cerrno>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace vitro::iobench {

namespace {
struct Name {
    Workload w;
    const char* name;
    const char* rw;
};
constexpr Name kNames[] = {{Workload::SeqRead, "seqread", "read"},
                           {Workload::SeqWrite, "seqwrite", "write"},
                           {Workload::RandRead, "randread", "randread"},
                           {Workload::RandWrite, "randwrite", "randwrite"},
                           {Workload::RandRW, "randrw", "randrw"}};
}  // namespace

Workload parse_workload(const std::string& name) {
    for (const auto& n : kNames)
        if (name == n.name) return n.w;
    throw Error(EINVAL, "--workload " + name + ": expected seqread, seqwrite, randread, randwrite or randrw");
}

const char* workload_name(Workload w) { return kNames[static_cast<int>(w)].name; }
const char* fio_rw(Workload w) { return kNames[static_cast<int>(w)].rw; }
bool reads(Workload w) { return w != Workload::SeqWrite && w != Workload::RandWrite; }
bool writes(Workload w) { return w != Workload::SeqRead && w != Workload::RandRead; }

BlockSize parse_block_size(const std::string& s) {
    uint64_t b = 0;
    try {
        b = parse_size(s, "--bs");
    } catch (const Error&) {
        throw Error(EINVAL, "--bs " + s + ": expected a size such as 4k, 64k or 1m");
    }
    if (b < 512 || b % 512 != 0 || b > (uint64_t{1} << 30))
        throw Error(EINVAL, "--bs " + s + ": expected a multiple of 512 bytes between 512 and 1g");
    return {s, b};
}

namespace {
std::vector<std::string> common(const Job& j, const std::string& name) {
    return {"--name=" + name, "--filename=" + j.filename, "--size=" + std::to_string(j.size),
            std::string("--direct=") + (j.direct ? "1" : "0"), "--ioengine=psync", "--numjobs=1"};
}
}  // namespace

std::vector<std::string> fio_args(const Job& j) {
    auto a = common(j, "vitro-io");
    a.push_back(std::string("--rw=") + fio_rw(j.workload));
    a.push_back("--bs=" + std::to_string(j.bs.bytes));
    if (j.workload == Workload::RandRW) a.push_back("--rwmixread=50");
    // The file is written already (layout_args) or written by the job: fio
    // must not lay it out inside the measured run.
    a.push_back("--output-format=json");
    return a;
}

std::vector<std::string> layout_args(const Job& j) {
    auto a = common(j, "vitro-io-layout");
    a.push_back("--rw=write");
    a.push_back("--bs=1048576");
    a.push_back("--output=/dev/null");
    return a;
}

}  // namespace vitro::iobench
