// introspect/ evidence store and bundles: the hash chain holds, and every
// single change is found — each record changed, deleted, swapped with its
// neighbour or duplicated; the tail cut; every byte of an exported bundle
// flipped. Real SQLite files and real tar bundles in a temp dir.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "introspect/evidence/evidence_archive.hpp"
#include "introspect/evidence/evidence_store.hpp"
#include "testutil.hpp"
#include "util/error.hpp"
#include "util/sqlite.hpp"

using namespace vitro;
using namespace vitro::introspect;
namespace fs = std::filesystem;

namespace {

using vitro::test::TempDir;

constexpr int kRecords = 8;

// A store with kRecords records, alternating between two containers.
std::string make_store(const TempDir& t, const std::string& name = "evidence.db") {
    std::string path = (t.path / name).string();
    EvidenceStore s(path);
    std::vector<EvidenceStore::NewRecord> batch;
    for (int i = 0; i < kRecords; ++i)
        batch.push_back({i % 2 ? "ctr-b" : "ctr-a", "process.exec",
                         {{"pid", 100 + i}, {"comm", "sh"}, {"cmdline", {"sh", "-c", "echo " + std::to_string(i)}}},
                         1000000000LL * (i + 1)});
    s.append_all(batch);
    return path;
}

// Raw SQL on the store's file, as an attacker with sqlite3 would (triggers dropped).
void tamper(const std::string& path, const std::string& sql) {
    auto db = sql::Db::open(path, false);
    db.exec("DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;");
    db.exec(sql);
}

std::string read_all(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST(EvidenceChain, AppendsOneByOneAndInBatchesChainAlike) {
    TempDir t{"evidence-unit"};
    std::string path = (t.path / "e.db").string();
    EvidenceStore s(path);
    auto a = s.append("c", "k", {{"n", 1}});
    auto b = s.append_all({{"c", "k", {{"n", 2}}, 0}, {"c", "k", {{"n", 3}}, 0}});
    EXPECT_EQ(a.seq, 1u);
    EXPECT_EQ(a.prev_hash, kGenesisHash);
    EXPECT_EQ(b.at(0).prev_hash, a.hash);
    EXPECT_EQ(b.at(1).seq, 3u);
    // A second connection (another process, the monitor) continues the same chain.
    EvidenceStore other(path, false);
    EXPECT_EQ(other.append("c", "k", {{"n", 4}}).prev_hash, b.at(1).hash);
    EXPECT_TRUE(s.verify().ok);
}

TEST(EvidenceChain, CleanStoreVerifies) {
    TempDir t{"evidence-unit"};
    auto path = make_store(t);
    EvidenceStore s(path, false);
    auto r = s.verify();
    EXPECT_TRUE(r.ok) << r.problem;
    EXPECT_EQ(r.count, static_cast<uint64_t>(kRecords));
    EXPECT_EQ(s.head()->seq, static_cast<uint64_t>(kRecords));
    EXPECT_EQ(r.last_hash, s.head()->hash);
}

TEST(EvidenceChain, TriggersRefuseUpdateAndDelete) {
    TempDir t{"evidence-unit"};
    auto path = make_store(t);
    auto db = sql::Db::open(path, false);
    EXPECT_THROW(db.exec("UPDATE records SET kind = 'x' WHERE seq = 1"), Error);
    EXPECT_THROW(db.exec("DELETE FROM records WHERE seq = 1"), Error);
}

TEST(EvidenceChain, OpeningAMissingStoreNamesIt) {
    TempDir t{"evidence-unit"};
    std::string p = (t.path / "nope.db").string();
    try {
        EvidenceStore s(p, false);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(p), std::string::npos);
    }
}

// Every field of every record changed: found, and the record named.
TEST(EvidenceChain, ChangingAnyFieldOfAnyRecordIsFound) {
    const char* changes[] = {"time_ns = time_ns + 1", "container_id = 'ctr-x'", "kind = 'process.exit'",
                             "payload = replace(payload, 'sh', 'ab')", "payload_sha256 = 'sha256:00'",
                             "prev_hash = hash", "hash = prev_hash"};
    for (int seq = 1; seq <= kRecords; ++seq) {
        for (const char* change : changes) {
            TempDir t{"evidence-unit"};
            auto path = make_store(t);
            tamper(path, "UPDATE records SET " + std::string(change) + " WHERE seq = " + std::to_string(seq));
            auto r = EvidenceStore(path, false).verify();
            ASSERT_FALSE(r.ok) << "seq " << seq << ": " << change;
            ASSERT_TRUE(r.bad_seq) << r.problem;
            EXPECT_EQ(*r.bad_seq, static_cast<uint64_t>(seq)) << change << ": " << r.problem;
        }
    }
}

// A record changed and re-hashed consistently: the next record's link breaks.
TEST(EvidenceChain, RehashedRecordBreaksTheNextLink) {
    for (int seq = 1; seq < kRecords; ++seq) {
        TempDir t{"evidence-unit"};
        auto path = make_store(t);
        EvidenceStore s(path, false);
        auto rec = s.range(seq, seq).at(0);
        rec.kind = "forged";
        rec.hash = compute_hash(rec);
        tamper(path, "UPDATE records SET kind = 'forged', hash = '" + rec.hash + "' WHERE seq = " + std::to_string(seq));
        auto r = EvidenceStore(path, false).verify();
        ASSERT_FALSE(r.ok);
        EXPECT_EQ(*r.bad_seq, static_cast<uint64_t>(seq + 1)) << r.problem;
    }
}

TEST(EvidenceChain, DeletingAnyRecordIsFound) {
    for (int seq = 1; seq <= kRecords; ++seq) {
        TempDir t{"evidence-unit"};
        auto path = make_store(t);
        tamper(path, "DELETE FROM records WHERE seq = " + std::to_string(seq));
        auto r = EvidenceStore(path, false).verify();
        ASSERT_FALSE(r.ok) << "deleted " << seq;
        EXPECT_TRUE(r.bad_seq);
        EXPECT_EQ(*r.bad_seq, static_cast<uint64_t>(seq == kRecords ? kRecords : seq + 1)) << r.problem;
    }
}

TEST(EvidenceChain, TruncatedTailIsFoundByTheHead) {
    TempDir t{"evidence-unit"};
    auto path = make_store(t);
    tamper(path, "DELETE FROM records WHERE seq > 5");
    auto r = EvidenceStore(path, false).verify();
    ASSERT_FALSE(r.ok);
    EXPECT_NE(r.problem.find("truncated"), std::string::npos) << r.problem;
}

TEST(EvidenceChain, RewrittenHeadIsFoundByItsHmac) {
    TempDir t{"evidence-unit"};
    auto path = make_store(t);
    EvidenceStore s(path, false);
    auto h5 = s.range(5, 5).at(0).hash;
    tamper(path, "DELETE FROM records WHERE seq > 5; UPDATE head SET seq = 5, hash = '" + h5 + "'");
    auto r = EvidenceStore(path, false).verify();
    ASSERT_FALSE(r.ok);
    EXPECT_NE(r.problem.find("HMAC"), std::string::npos) << r.problem;
}

TEST(EvidenceChain, SwappingAnyTwoNeighboursIsFound) {
    for (int seq = 1; seq < kRecords; ++seq) {
        TempDir t{"evidence-unit"};
        auto path = make_store(t);
        // Swap the contents of rows seq and seq+1, keeping the seq column.
        std::string a = std::to_string(seq), b = std::to_string(seq + 1);
        tamper(path, "CREATE TEMP TABLE x AS SELECT * FROM records WHERE seq IN (" + a + "," + b + ");"
                     "DELETE FROM records WHERE seq IN (" + a + "," + b + ");"
                     "INSERT INTO records SELECT CASE seq WHEN " + a + " THEN " + b + " ELSE " + a +
                     " END, time_ns, container_id, kind, payload, payload_sha256, prev_hash, hash FROM x;");
        auto r = EvidenceStore(path, false).verify();
        ASSERT_FALSE(r.ok) << "swapped " << seq;
        EXPECT_EQ(*r.bad_seq, static_cast<uint64_t>(seq)) << r.problem;
    }
}

TEST(EvidenceChain, InsertingARecordAnywhereIsFound) {
    for (int at = 1; at <= kRecords + 1; ++at) {
        TempDir t{"evidence-unit"};
        auto path = make_store(t);
        // Renumber the tail up by one and put a copy of record 1 at `at`.
        tamper(path, "CREATE TEMP TABLE x AS SELECT * FROM records;"
                     "DELETE FROM records;"
                     "INSERT INTO records SELECT CASE WHEN seq >= " + std::to_string(at) +
                     " THEN seq + 1 ELSE seq END, time_ns, container_id, kind, payload, payload_sha256, prev_hash, hash FROM x;"
                     "INSERT INTO records SELECT " + std::to_string(at) +
                     ", time_ns, container_id, kind, payload, payload_sha256, prev_hash, hash FROM x WHERE seq = 1;");
        auto r = EvidenceStore(path, false).verify();
        ASSERT_FALSE(r.ok) << "inserted at " << at;
        EXPECT_TRUE(r.bad_seq) << r.problem;
    }
}

TEST(EvidenceChain, SegmentRedactsOtherContainersAndStillVerifies) {
    TempDir t{"evidence-unit"};
    auto path = make_store(t);
    EvidenceStore s(path, false);
    auto seg = s.segment_for("ctr-b", 0, INT64_MAX);
    ASSERT_EQ(seg.size(), static_cast<size_t>(kRecords - 1));  // seq 2..8
    EXPECT_EQ(seg.front().seq, 2u);
    for (const auto& r : seg) EXPECT_EQ(r.redacted(), r.container_id != "ctr-b");
    auto res = verify_chain(seg, 2, seg.front().prev_hash);
    EXPECT_TRUE(res.ok) << res.problem;
    auto last2 = s.segment_for("ctr-b", 0, INT64_MAX, 2);
    EXPECT_EQ(last2.front().seq, 6u);
    EXPECT_TRUE(s.segment_for("ctr-b", 0, 1).empty());
}

// Every byte of an exported bundle flipped, one at a time: always found.
TEST(EvidenceBundle, FlippingAnyByteIsFound) {
    TempDir t{"evidence-unit"};
    auto path = make_store(t);
    EvidenceStore s(path, false);
    auto seg = s.segment_for("ctr-a", 0, INT64_MAX);
    std::string bundle = (t.path / "b.tar").string();
    write_bundle(bundle, {{"type", "export"}, {"chain", chain_manifest(seg)}},
                 {{"records.jsonl", records_jsonl(seg)}});
    auto clean = verify_bundle(bundle);
    ASSERT_TRUE(clean.ok) << clean.problem;
    EXPECT_EQ(clean.count, seg.size());
    std::string bytes = read_all(bundle);
    size_t named = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
        std::string b = bytes;
        b[i] = static_cast<char>(b[i] ^ 0x01);
        auto r = verify_bundle_bytes(b, "flipped");
        ASSERT_FALSE(r.ok) << "byte " << i << " flipped went unnoticed";
        named += r.bad_seq.has_value();
    }
    EXPECT_GT(named, 0u);  // flips inside records name the record
}

TEST(EvidenceBundle, RecordChangedInsideABundleIsNamed) {
    TempDir t{"evidence-unit"};
    auto path = make_store(t);
    auto seg = EvidenceStore(path, false).segment_for("ctr-a", 0, INT64_MAX);
    seg[2].kind = "forged";
    std::string bundle = (t.path / "b.tar").string();
    // Re-sealed by the forger (manifest and tar consistent): the chain still tells.
    write_bundle(bundle, {{"type", "export"}, {"chain", chain_manifest(seg)}}, {{"records.jsonl", records_jsonl(seg)}});
    auto r = verify_bundle(bundle);
    ASSERT_FALSE(r.ok);
    EXPECT_EQ(*r.bad_seq, seg[2].seq) << r.problem;
}

TEST(EvidenceBundle, WriteLeavesNoTempFile) {
    TempDir t{"evidence-unit"};
    std::string bundle = (t.path / "b.tar").string();
    write_bundle(bundle, {{"type", "collect"}}, {{"a.json", "{}"}});
    EXPECT_TRUE(verify_bundle(bundle).ok);
    size_t n = 0;
    for (auto& e : fs::directory_iterator(t.path)) n += (void(e), 1);
    EXPECT_EQ(n, 1u);
    EXPECT_THROW(write_bundle((t.path / "no/such/dir.tar").string(), {}, {}), Error);
}
