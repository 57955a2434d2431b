// The evidence hash chain: what one record is, how its hash is computed, and
// how a sequence of records is checked.
//
// hash = SHA-256 over a canonical encoding of (seq, time_ns, container_id,
// kind, SHA-256 of the payload text, prev_hash): each field as a netstring
// ("<len>:<bytes>,") after a version tag, so no two field lists encode alike.
// The payload enters through its own hash so that a record can be shown
// "redacted" (payload left out, payload_sha256 kept) and the chain through it
// still checks: an export for one container keeps the other containers'
// records in its range only as such stubs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vitro::introspect {

// prev_hash of the first record of a store.
inline constexpr const char* kGenesisHash =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

struct EvidenceRecord {
    uint64_t seq = 0;       // 1, 2, 3, ... without gaps
    int64_t time_ns = 0;    // CLOCK_REALTIME, nanoseconds since the epoch
    std::string container_id;
    std::string kind;       // "process.exec", "net.listen", "file.change", ...
    std::optional<std::string> payload;  // JSON text; nullopt when redacted
    std::string payload_sha256;          // "sha256:<hex>" of the payload text
    std::string prev_hash;
    std::string hash;

    bool redacted() const { return !payload.has_value(); }
    // One JSON object per record (records.jsonl lines); a redacted record has
    // no "payload" key. from_json throws vitro::Error on a missing/mistyped field.
    nlohmann::json to_json() const;
    static EvidenceRecord from_json(const nlohmann::json& j);
};

// The canonical bytes the hash is computed over.
std::string canonical_encoding(const EvidenceRecord& r);
std::string compute_hash(const EvidenceRecord& r);

// Result of checking a chain (or a bundle): the first problem found.
struct VerifyResult {
    bool ok = true;
    uint64_t count = 0;              // records checked
    std::optional<uint64_t> bad_seq; // the first bad record, when one is to blame
    std::string problem;             // what is wrong, for a person
    std::string last_hash;           // the hash of the last record (the anchor to compare)
    void fail(std::optional<uint64_t> seq, std::string what) {
        if (!ok) return;  // keep the first
        ok = false;
        bad_seq = seq;
        problem = std::move(what);
    }
};

// Checks records in order: seq first_seq, first_seq+1, ... (no gap, no
// repeat, no reordering), each prev_hash the hash before (the first one's
// `first_prev`), each payload_sha256 matching its payload (when present) and
// each hash recomputed. Stops at the first problem.
VerifyResult verify_chain(const std::vector<EvidenceRecord>& records, uint64_t first_seq,
                          const std::string& first_prev);

}  // namespace vitro::introspect
