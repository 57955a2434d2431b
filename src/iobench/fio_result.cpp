#include "iobench/fio_result.hpp"

#include <cerrno>

#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace vitro::iobench {

namespace {
double percentile_us(const nlohmann::json& dir, const char* key) {
    auto clat = dir.find("clat_ns");
    if (clat == dir.end() || !clat->contains("percentile")) return 0;
    const auto& p = (*clat)["percentile"];
    return p.contains(key) ? p[key].get<double>() / 1000.0 : 0;
}
}  // namespace

FioResult parse_fio_json(std::string_view text) {
    size_t start = text.find('{');
    if (start == std::string_view::npos) throw Error(EINVAL, "fio printed no JSON: " + std::string(text.substr(0, 200)));
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text.substr(start));
    } catch (const nlohmann::json::exception& e) {
        throw Error(EINVAL, std::string("fio's JSON does not parse: ") + e.what());
    }
    if (!j.is_object() || !j.contains("jobs") || !j["jobs"].is_array() || j["jobs"].empty())
        throw Error(EINVAL, "fio's JSON has no jobs");
    FioResult r;
    r.version = j.value("fio version", "");
    const auto& job = j["jobs"][0];
    uint64_t busiest = 0;
    for (const char* dir : {"read", "write"}) {
        if (!job.contains(dir)) continue;
        const auto& d = job[dir];
        uint64_t bytes = d.value("io_bytes", uint64_t{0});
        (std::string_view(dir) == "read" ? r.read_bytes : r.write_bytes) = bytes;
        r.bandwidth_bytes_per_s += d.value("bw_bytes", 0.0);
        r.iops += d.value("iops", 0.0);
        r.runtime_s = std::max(r.runtime_s, d.value("runtime", 0.0) / 1000.0);
        if (bytes > busiest) {
            busiest = bytes;
            r.clat_p50_us = percentile_us(d, "50.000000");
            r.clat_p99_us = percentile_us(d, "99.000000");
        }
    }
    r.usr_cpu_pct = job.value("usr_cpu", 0.0);
    r.sys_cpu_pct = job.value("sys_cpu", 0.0);
    return r;
}

}  // namespace vitro::iobench
