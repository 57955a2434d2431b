// One fio job as `vitro bench io` runs it: the workload names the user gives
// (seqread, ..., randrw), block sizes kept as given ("4k") for the report,
// and the fio command line, the same in every isolation mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vitro::iobench {

enum class Workload { SeqRead, SeqWrite, RandRead, RandWrite, RandRW };

// "seqread" -> SeqRead; throws Error(EINVAL) naming the word and the choices.
Workload parse_workload(const std::string& name);
const char* workload_name(Workload w);  // "seqread"
const char* fio_rw(Workload w);         // fio's --rw: read, write, randread, randwrite, randrw
// True when the job reads a file that must exist first (fio lays it out).
bool reads(Workload w);
bool writes(Workload w);

struct BlockSize {
    std::string given;  // "4k", as the user wrote it
    uint64_t bytes = 0;
};
// fio's units: k/m/g are powers of 1024; at least 512 bytes and a multiple of
// 512 (O_DIRECT's smallest unit). Throws Error(EINVAL) naming --bs.
BlockSize parse_block_size(const std::string& s);

struct Job {
    Workload workload = Workload::SeqRead;
    BlockSize bs;
    uint64_t size = 0;  // bytes
    bool direct = false;
    std::string filename;  // as the fio process sees it
};

// fio's arguments for the measured job (JSON on stdout), argv[0] excluded.
std::vector<std::string> fio_args(const Job& job);
// The arguments that lay the file out before a read job (sequential 1 MiB
// writes; not measured).
std::vector<std::string> layout_args(const Job& job);

}  // namespace vitro::iobench
