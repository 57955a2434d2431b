#include "iobench/plan.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <set>
#include <sstream>

#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace vitro::iobench {

namespace {

uint64_t free_bytes(const std::string& dir) {
    struct statvfs st{};
    if (::statvfs(dir.c_str(), &st) != 0) throw_errno("statvfs", dir);
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

uint64_t mem_available() {
    std::istringstream in(read_file("/proc/meminfo"));
    for (std::string key; in >> key;) {
        uint64_t kb = 0;
        std::string unit;
        in >> kb >> unit;
        if (key == "MemAvailable:") return kb * 1024;
    }
    return 0;
}

std::string mib(uint64_t b) { return std::to_string(b >> 20) + " MiB"; }

}  // namespace

const char* target_name(TargetKind t) {
    switch (t) {
    case TargetKind::Rootfs: return "rootfs";
    case TargetKind::Volume: return "volume";
    case TargetKind::Tmpfs: return "tmpfs";
    }
    return "?";
}

std::vector<std::string> binary_with_libraries(const std::string& binary) {
    auto r = run_program_capture("/usr/bin/ldd", {"ldd", binary}, {}, "", 30);
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
        throw Error(ENOEXEC, "ldd " + binary + ": " + describe_status(r, 30) + ": " + r.stderr_tail);
    std::vector<std::string> files{binary};
    std::set<std::string> seen;
    for (const auto& line : split(r.stdout_data, '\n')) {
        // "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "\t/lib64/ld-linux-x86-64.so.2 (0x...)"
        std::istringstream in(line);
        std::vector<std::string> w;
        for (std::string s; in >> s;) w.push_back(s);
        std::string path;
        if (w.size() >= 3 && w[1] == "=>") path = w[2];
        else if (!w.empty() && w[0][0] == '/') path = w[0];
        if (!path.empty() && path[0] == '/' && seen.insert(path).second) files.push_back(path);
    }
    return files;
}

Plan make_plan(const Options& o) {
    Plan p;
    if (o.profile)
        throw Error(ENOTSUP, "--profile: not yet (perf record -e cpu-clock with grouped symbols is planned; "
                             "run `perf record -e cpu-clock -a -g -- vitro bench io ...` by hand meanwhile)");
    if (o.repeat < 1) throw Error(EINVAL, "--repeat " + std::to_string(o.repeat) + ": expected at least 1");
    p.repeat = o.repeat;
    p.direct = o.direct;

    std::vector<Workload> workloads;
    for (const auto& w : o.workloads) workloads.push_back(parse_workload(w));
    std::vector<BlockSize> sizes;
    for (const auto& b : o.block_sizes) sizes.push_back(parse_block_size(b));
    if (workloads.empty()) throw Error(EINVAL, "--workload: expected at least one workload");
    if (sizes.empty()) throw Error(EINVAL, "--bs: expected at least one block size");
    try {
        p.size = parse_size(o.size, "--size");
    } catch (const Error&) {
        throw Error(EINVAL, "--size " + o.size + ": expected a size such as 64m or 1g");
    }
    uint64_t max_bs = 0;
    for (const auto& b : sizes) max_bs = std::max(max_bs, b.bytes);
    if (p.size == UINT64_MAX || p.size < max_bs || p.size % max_bs != 0)
        throw Error(EINVAL, "--size " + o.size + ": expected a multiple of the largest --bs (" + std::to_string(max_bs) + " bytes)");

    std::vector<std::pair<std::string, std::string>> modes;  // isolation, runtime
    for (const auto& iso : o.isolations) {
        if (iso == "host") {
            modes.emplace_back("host", "none");
        } else if (iso == "namespace") {
            if (o.runtimes.empty()) throw Error(EINVAL, "--runtime: expected at least one runtime");
            for (const auto& rt : o.runtimes) {
                if (rt != "vitro" && rt != "crun" && rt != "runc")
                    throw Error(EINVAL, "--runtime " + rt + ": expected vitro, crun or runc");
                if (rt != "vitro" && find_program(rt).empty())
                    throw Error(ENOENT, "--runtime " + rt + ": " + rt + " is not installed (not found in PATH)");
                modes.emplace_back("namespace", rt);
            }
            p.needs_engine = true;
        } else if (iso == "vm") {
            modes.emplace_back("vm", "vitro");  // QEMU microvm (docs/isolation.md); --runtime is the namespace mode's
            p.needs_engine = true;
        } else {
            throw Error(EINVAL, "--isolation " + iso + ": expected host, namespace or vm");
        }
    }
    if (modes.empty()) throw Error(EINVAL, "--isolation: expected at least one mode");

    p.fio = find_program("fio");
    if (p.fio.empty()) throw Error(ENOENT, "fio is not installed (not found in PATH; Debian: apt-get install fio)");
    if (p.needs_engine) p.fio_files = binary_with_libraries(p.fio);

    // The target, and room for the file on it.
    std::string space_dir;
    if (o.target == "rootfs") {
        p.target = TargetKind::Rootfs;
        space_dir = o.storage_root;
    } else if (o.target == "volume") {
        p.target = TargetKind::Volume;
        space_dir = o.storage_root;
    } else if (o.target == "tmpfs") {
        p.target = TargetKind::Tmpfs;
    } else if (!o.target.empty() && o.target[0] == '/') {
        struct stat st{};
        if (::stat(o.target.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw Error(ENOENT, "--target " + o.target + ": no such directory");
        p.target = TargetKind::Volume;
        p.target_dir = space_dir = o.target;
    } else {
        throw Error(EINVAL, "--target " + o.target + ": expected rootfs, volume, tmpfs or an existing directory");
    }
    if (p.target == TargetKind::Tmpfs) {
        uint64_t avail = mem_available();
        if (p.size > avail)
            throw Error(ENOSPC, "--size " + o.size + ": larger than the memory available for a tmpfs (" + mib(avail) + ")");
    } else {
        make_dirs(space_dir);
        uint64_t avail = free_bytes(space_dir);
        if (p.size > avail)
            throw Error(ENOSPC, "--size " + o.size + ": larger than the free space of " + space_dir + " (" + mib(avail) + ")");
    }

    for (const auto& [iso, rt] : modes)
        for (auto w : workloads)
            for (const auto& b : sizes) p.cells.push_back({iso, rt, w, b});
    return p;
}

}  // namespace vitro::iobench
