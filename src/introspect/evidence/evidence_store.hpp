// The evidence store: an append-only, hash-chained log of what was observed
// about containers (hash_chain.hpp), in SQLite at <root>/evidence/evidence.db.
//
// Tables: `records` (one row per record; UPDATE and DELETE refused by
// triggers, which stop mistakes, not an attacker with the file) and `head`
// (one row: the last seq and hash, and an HMAC-SHA256 of them under the key
// in <dir>/head.key, mode 0600). The chain proves that no record inside it
// was changed, removed, inserted or reordered; the head proves the tail was
// not cut off, as far as whoever cut it could not also rewrite the head: a
// writer that can read head.key (root on this machine) can rewrite
// everything. Against that, keep the last hash somewhere else (an export's
// manifest, a ticket) and compare.
//
// Any number of processes may append at once: each append is one BEGIN
// IMMEDIATE transaction that reads the head and writes record + head. Like
// the engine's state store, one EvidenceStore belongs to one thread and must
// not be used across fork().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "introspect/evidence/hash_chain.hpp"
#include "util/sqlite.hpp"

namespace vitro::introspect {

// <root>/evidence/evidence.db
std::string default_evidence_path(const std::string& root);
// CLOCK_REALTIME in nanoseconds.
int64_t now_ns();

class EvidenceStore {
public:
    // Opens the store at `path`; with `create`, makes it (and its key) when
    // missing, else throws ENOENT naming the path.
    explicit EvidenceStore(const std::string& path, bool create = true);

    const std::string& path() const { return db_.path(); }

    // Appends one record (time_ns 0: now) and moves the head. Returns it.
    EvidenceRecord append(const std::string& container_id, const std::string& kind, const nlohmann::json& payload,
                          int64_t time_ns = 0);
    // Appends several in one transaction (one WAL sync for all: what keeps a
    // burst of events cheap). Returns them in order, seq and hash set.
    struct NewRecord {
        std::string container_id, kind;
        nlohmann::json payload;
        int64_t time_ns = 0;
    };
    std::vector<EvidenceRecord> append_all(const std::vector<NewRecord>& batch);

    struct Head {
        uint64_t seq = 0;
        std::string hash, mac;
    };
    std::optional<Head> head();

    // Records first..last (inclusive), in seq order, with payloads.
    std::vector<EvidenceRecord> range(uint64_t first, uint64_t last);
    // Every record of `kind` with time_ns >= since_ns, in seq order (alerts).
    std::vector<EvidenceRecord> of_kind(const std::string& kind, int64_t since_ns = 0);
    // The chain segment that covers `container_id`'s records with time_ns in
    // [since_ns, until_ns] (only the last `limit` of them when limit > 0):
    // every record from the first match to the last, the other containers'
    // records redacted (payload dropped), so that the segment verifies on
    // its own from its first record's prev_hash. Empty when nothing matches.
    std::vector<EvidenceRecord> segment_for(const std::string& container_id, int64_t since_ns, int64_t until_ns,
                                            size_t limit = 0);

    // Checks the file (SQLite's integrity check: pages, order, the index
    // against the table), each field's type, the whole chain walked in the
    // table itself, then the head (seq, hash and HMAC), all in one snapshot.
    VerifyResult verify();

    // One consistent view across several reads (a read transaction: what
    // other processes append meanwhile is not seen until it ends), e.g. a
    // verify and then the segment exported from what was verified.
    class Snapshot {
    public:
        explicit Snapshot(sql::Db& db);
        Snapshot(const Snapshot&) = delete;
        Snapshot& operator=(const Snapshot&) = delete;
        ~Snapshot();

    private:
        sql::Db& db_;
    };
    [[nodiscard]] Snapshot snapshot() { return Snapshot(db_); }

private:
    std::string damage();
    std::string head_mac(uint64_t seq, const std::string& hash) const;
    sql::Db db_;
    std::string key_;  // HMAC key ("" when unreadable: the head is then checked without it)
};

}  // namespace vitro::introspect
