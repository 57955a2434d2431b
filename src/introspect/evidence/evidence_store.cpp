#include "introspect/evidence/evidence_store.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/error.hpp"
#include "util/file.hpp"
#include "util/sha256.hpp"

namespace vitro::introspect {

namespace {

constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  time_ns INTEGER NOT NULL,
  container_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  payload_sha256 TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_container ON records(container_id, time_ns);
CREATE TABLE IF NOT EXISTS head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL,
  mac TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
  BEGIN SELECT RAISE(ABORT, 'evidence records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
  BEGIN SELECT RAISE(ABORT, 'evidence records are append-only'); END;
)SQL";

std::string dir_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// The key beside the database: created once (0600) when `create`.
std::string load_key(const std::string& dir, bool create) {
    std::string path = dir + "/head.key";
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT && create) {
        unsigned char key[32];
        if (::getrandom(key, sizeof key, 0) != static_cast<ssize_t>(sizeof key)) throw_errno("getrandom", "evidence key");
        UniqueFd w(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!w && errno != EEXIST) throw_errno("create", path);
        if (w) write_all(w.get(), std::string_view(reinterpret_cast<char*>(key), sizeof key), path);
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0) return "";
    UniqueFd owner(fd);
    return read_fd(fd);
}

EvidenceRecord row_to_record(sql::Stmt& s) {
    EvidenceRecord r;
    r.seq = static_cast<uint64_t>(s.int64(0));
    r.time_ns = s.int64(1);
    r.container_id = s.text(2);
    r.kind = s.text(3);
    r.payload = s.text(4);
    r.payload_sha256 = s.text(5);
    r.prev_hash = s.text(6);
    r.hash = s.text(7);
    return r;
}

constexpr const char* kSelect =
    "SELECT seq, time_ns, container_id, kind, payload, payload_sha256, prev_hash, hash FROM records ";

}  // namespace

std::string default_evidence_path(const std::string& root) { return root + "/evidence/evidence.db"; }

int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

EvidenceStore::EvidenceStore(const std::string& path, bool create) {
    std::string dir = dir_of(path);
    if (create) {
        make_dirs(dir, 0700);
    } else if (!path_exists(path)) {
        throw Error(ENOENT, "evidence store " + path + ": no such file");
    }
    db_ = sql::Db::open(path, create);
    int rc = sqlite3_busy_timeout(db_.get(), 10000);
    if (rc != SQLITE_OK) db_.fail("busy_timeout", "", rc);
    // A store someone else's file happens to be: say so, not "no such table".
    if (!create) {
        auto s = db_.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('records', 'head')");
        s.step();
        if (s.int64(0) != 2) throw Error(EINVAL, "evidence store " + path + ": not an evidence store (no records/head tables)");
    } else {
        db_.exec("PRAGMA journal_mode = WAL");
        db_.exec(kSchema);
    }
    key_ = load_key(dir, create);
}

std::string EvidenceStore::head_mac(uint64_t seq, const std::string& hash) const {
    std::string msg = "vitro-evidence-head/1\n" + std::to_string(seq) + "\n" + hash;
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(msg.data()),
              msg.size(), out, &len))
        throw Error("hmac-sha256: failed");
    return "hmac-sha256:" + hex_of(out, len);
}

EvidenceRecord EvidenceStore::append(const std::string& container_id, const std::string& kind,
                                     const nlohmann::json& payload, int64_t time_ns) {
    return append_all({{container_id, kind, payload, time_ns}}).at(0);
}

std::vector<EvidenceRecord> EvidenceStore::append_all(const std::vector<NewRecord>& batch) {
    if (key_.empty()) throw Error(EACCES, "evidence store " + path() + ": head key unreadable, cannot append");
    std::vector<EvidenceRecord> out;
    if (batch.empty()) return out;
    out.reserve(batch.size());
    for (const auto& n : batch) {
        EvidenceRecord r;
        r.time_ns = n.time_ns ? n.time_ns : now_ns();
        r.container_id = n.container_id;
        r.kind = n.kind;
        r.payload = n.payload.dump();  // keys sorted (std::map): one text per value
        r.payload_sha256 = sha256_digest(*r.payload);
        out.push_back(std::move(r));
    }
    db_.exec("BEGIN IMMEDIATE");
    try {
        // seq and prev_hash only under the write lock: another appender may have moved the head.
        auto h = head();
        uint64_t seq = h ? h->seq : 0;
        std::string prev = h ? h->hash : kGenesisHash;
        auto ins = db_.prepare("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        for (auto& r : out) {
            r.seq = ++seq;
            r.prev_hash = prev;
            r.hash = compute_hash(r);
            prev = r.hash;
            ins.bind(1, static_cast<int64_t>(r.seq))
                .bind(2, r.time_ns)
                .bind(3, r.container_id)
                .bind(4, r.kind)
                .bind(5, *r.payload)
                .bind(6, r.payload_sha256)
                .bind(7, r.prev_hash)
                .bind(8, r.hash)
                .run();
            ins.reset();
        }
        db_.prepare("INSERT OR REPLACE INTO head (id, seq, hash, mac) VALUES (1, ?, ?, ?)")
            .bind(1, static_cast<int64_t>(seq))
            .bind(2, prev)
            .bind(3, head_mac(seq, prev))
            .run();
        db_.exec("COMMIT");
    } catch (...) {
        if (db_.in_transaction()) db_.exec("ROLLBACK");
        throw;
    }
    return out;
}

std::optional<EvidenceStore::Head> EvidenceStore::head() {
    auto s = db_.prepare("SELECT seq, hash, mac FROM head WHERE id = 1");
    if (!s.step()) return std::nullopt;
    return Head{static_cast<uint64_t>(s.int64(0)), s.text(1), s.text(2)};
}

std::vector<EvidenceRecord> EvidenceStore::range(uint64_t first, uint64_t last) {
    std::vector<EvidenceRecord> out;
    auto s = db_.prepare(std::string(kSelect) + "WHERE seq BETWEEN ? AND ? ORDER BY seq");
    s.bind(1, static_cast<int64_t>(first)).bind(2, static_cast<int64_t>(last));
    while (s.step()) out.push_back(row_to_record(s));
    return out;
}

std::vector<EvidenceRecord> EvidenceStore::of_kind(const std::string& kind, int64_t since_ns) {
    std::vector<EvidenceRecord> out;
    auto s = db_.prepare(std::string(kSelect) + "WHERE kind = ? AND time_ns >= ? ORDER BY seq");
    s.bind(1, kind).bind(2, since_ns);
    while (s.step()) out.push_back(row_to_record(s));
    return out;
}

std::vector<EvidenceRecord> EvidenceStore::segment_for(const std::string& container_id, int64_t since_ns,
                                                       int64_t until_ns, size_t limit) {
    auto s = db_.prepare(
        "SELECT seq FROM records WHERE container_id = ? AND time_ns BETWEEN ? AND ? ORDER BY seq DESC" +
        std::string(limit ? " LIMIT " + std::to_string(limit) : ""));
    s.bind(1, container_id).bind(2, since_ns).bind(3, until_ns);
    uint64_t first = 0, last = 0;
    while (s.step()) {
        auto seq = static_cast<uint64_t>(s.int64(0));
        if (!last) last = seq;
        first = seq;
    }
    if (!last) return {};
    auto out = range(first, last);
    for (auto& r : out)
        if (r.container_id != container_id) r.payload.reset();
    return out;
}

// SQLite's own check of the file: every page, every b-tree's order, and each
// index against its table. Without it, damage to records_by_container (one
// flipped bit) hides records from segment_for() and an export while the walk
// of the table below still finds every record. "" when intact.
std::string EvidenceStore::damage() {
    auto s = db_.prepare("PRAGMA integrity_check(20)");
    std::string problems;
    while (s.step()) {
        std::string line = s.text(0);
        if (line == "ok") break;
        problems += (problems.empty() ? "" : "; ") + line;
    }
    return problems;
}

EvidenceStore::Snapshot::Snapshot(sql::Db& db) : db_(db) { db_.exec("BEGIN"); }

EvidenceStore::Snapshot::~Snapshot() {
    // Nothing was written: ending it cannot lose anything, and a destructor must not throw.
    if (sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
        sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

VerifyResult EvidenceStore::verify() {
    // One snapshot (unless the caller holds one): an append by another
    // process between the walk and the head would look like a cut tail.
    std::optional<Snapshot> snap;
    if (!db_.in_transaction()) snap.emplace(db_);
    VerifyResult res;
    if (auto d = damage(); !d.empty()) {
        res.fail(std::nullopt, "the database file is damaged (SQLite integrity check: " + d + ")");
        return res;
    }
    // The table itself in seq order (never an index), each column of its
    // declared type: a text turned blob by one bit still reads alike but no
    // longer matches `kind = ?` or `container_id = ?`, hiding the record from
    // alerts and exports.
    auto t = db_.prepare(
        "SELECT seq FROM records NOT INDEXED WHERE typeof(seq) != 'integer' OR typeof(time_ns) != 'integer' OR "
        "typeof(container_id) != 'text' OR typeof(kind) != 'text' OR typeof(payload) != 'text' OR "
        "typeof(payload_sha256) != 'text' OR typeof(prev_hash) != 'text' OR typeof(hash) != 'text' ORDER BY seq LIMIT 1");
    if (t.step()) {
        res.fail(static_cast<uint64_t>(t.int64(0)), "a field is not of its declared type (the file was changed)");
        return res;
    }
    std::vector<EvidenceRecord> all;
    auto s = db_.prepare(std::string(kSelect) + "NOT INDEXED ORDER BY seq");
    while (s.step()) all.push_back(row_to_record(s));
    res = verify_chain(all, 1, kGenesisHash);
    if (!res.ok) return res;
    auto h = head();
    uint64_t last = all.empty() ? 0 : all.back().seq;
    if (!h) {
        if (!all.empty()) res.fail(std::nullopt, "the head record is missing (it was deleted)");
        return res;
    }
    if (h->seq > last)
        res.fail(last + 1, "the head says the store ends at record " + std::to_string(h->seq) + " but the last record is " +
                               std::to_string(last) + ": records " + std::to_string(last + 1) + ".." +
                               std::to_string(h->seq) + " were removed (tail truncated)");
    else if (h->seq < last)
        res.fail(h->seq + 1, "records after " + std::to_string(h->seq) + " are not covered by the head (appended behind the store's back)");
    else if (h->hash != res.last_hash)
        res.fail(last, "the head's hash is not the hash of the last record (the tail was rewritten)");
    else if (!key_.empty() && h->mac != head_mac(h->seq, h->hash))
        res.fail(std::nullopt, "the head's HMAC does not match its seq and hash (the head was rewritten without the key)");
    return res;
}

}  // namespace vitro::introspect
