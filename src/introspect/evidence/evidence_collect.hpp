// Point-in-time capture of one running container (`vitro evidence collect`):
// everything below read from the host's view, written as one bundle
// (evidence_archive.hpp) that `vitro evidence verify` checks.
//
// Members: container.json (record, image and digest), processes.json (the
// cgroup's processes with exe SHA-256, open files, namespaces), sockets.json
// (sock_diag in the container's network namespace, each socket with the
// processes holding it), mounts.json (init's mountinfo), namespaces.json,
// cgroup.json (raw counter files and the engine's stats), fs-diff.json (the
// overlay upper dir with SHA-256 of added and changed files), records.jsonl
// (the container's recent evidence records as a verifiable chain segment),
// and file-<hex>: a copy of each added or changed regular file of at most
// CollectTarget::copy_max_file bytes (named by its SHA-256, listed in its
// fs-diff entry as "copied_as"; copy_max_total bytes in all).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vitro::introspect {

class EvidenceStore;

struct CollectTarget {
    std::string id, name;
    pid_t init_pid = 0;
    uint64_t init_start_ticks = 0;  // to notice a pid reused after the container exited
    std::vector<pid_t> pids;        // the cgroup's processes (host pids)
    std::string upper_dir;          // overlay upper dir ("" when none)
    std::vector<std::string> layers;  // lower layers, base first (for the diff's A/C)
    nlohmann::json container;       // what to say about the container (inspect-like)
    nlohmann::json stats;           // the engine's cgroup stats (optional)
    size_t copy_max_file = 1 << 20;   // copy changed files up to this size (0: none)
    size_t copy_max_total = 64 << 20; // ... and this much in all
};

struct CollectSummary {
    size_t processes = 0, sockets = 0, changes = 0, records = 0, files_copied = 0;
};

// Collects and writes the bundle to `out_path` (temp name + rename). Throws
// vitro::Error naming the container when it exits during the collection;
// nothing is written then. `store` may be null (no records member).
CollectSummary collect(const CollectTarget& t, EvidenceStore* store, size_t record_limit, const std::string& out_path);

}  // namespace vitro::introspect
