// introspect/ evidence store: damage to the SQLite file itself (a flipped
// bit anywhere: a page header, a b-tree cell, the index, the schema) never
// hides a record. Each flip either leaves every record readable, by every
// query that reads them (the walk, export's segment, alerts' of_kind) with
// verify OK and the full count, or makes verify fail. Never "OK" with fewer
// records, never an export of fewer. Real SQLite files in a temp dir, one
// fresh copy per flip.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "introspect/evidence/evidence_store.hpp"
#include "testutil.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/sqlite.hpp"

using namespace vitro;
using namespace vitro::introspect;
namespace fs = std::filesystem;

// Named, not anonymous: unity builds put this file in one unit with others.
namespace evidence_damage {

using vitro::test::TempDir;

const std::vector<std::string> kContainers = {std::string(64, 'a'), std::string(64, 'b'), std::string(64, 'c')};
const std::vector<std::string> kKinds = {"process.exec", "net.connect", "file.write", "alert"};

// What a store holds, read back through every query that serves it.
struct Contents {
    std::vector<EvidenceRecord> all;
    std::map<std::string, std::vector<EvidenceRecord>> by_container, by_kind;
};

Contents contents_of(EvidenceStore& s) {
    Contents c;
    c.all = s.range(1, static_cast<uint64_t>(INT64_MAX));
    for (const auto& id : kContainers) c.by_container[id] = s.segment_for(id, 0, INT64_MAX);
    for (const auto& k : kKinds) c.by_kind[k] = s.of_kind(k);
    return c;
}

bool same(const std::vector<EvidenceRecord>& a, const std::vector<EvidenceRecord>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].to_json() != b[i].to_json()) return false;
    return true;
}

// 150 records of three containers and four kinds in a dozen transactions,
// payloads from a few bytes to ~1.5 KiB (records spread over many pages,
// some overflowing): the store a monitor leaves, closed (WAL checkpointed).
struct Store {
    TempDir t{"evidence-damage"};
    std::string path = (t.path / "evidence.db").string();
    std::string bytes, key;
    Contents clean;
    uint64_t count = 0;
    size_t page_size = 0;

    Store() {
        std::mt19937 rng(7);
        {
            EvidenceStore s(path);
            for (int batch = 0; batch < 12; ++batch) {
                std::vector<EvidenceStore::NewRecord> b;
                for (int i = 0; i < 12 + batch % 3; ++i) {
                    std::string pad(rng() % 1500, static_cast<char>('a' + rng() % 26));
                    b.push_back({kContainers[rng() % kContainers.size()], kKinds[rng() % kKinds.size()],
                                 {{"pid", rng() % 100000}, {"comm", "sh"}, {"pad", pad}},
                                 1700000000000000000LL + batch * 1000 + i});
                }
                s.append_all(b);
            }
            clean = contents_of(s);
            count = s.head()->seq;
            auto db = sql::Db::open(path, false);
            auto ps = db.prepare("PRAGMA page_size");
            ps.step();
            page_size = static_cast<size_t>(ps.int64(0));
        }
        bytes = vitro::read_file(path);
        key = vitro::read_file((t.path / "head.key").string());
    }
};

enum class Verdict { kIntact, kFailed };

// One damaged copy: the verdict, and when it is OK, that nothing is hidden
// (a test failure names the byte and bit).
Verdict check_copy(const Store& st, const std::string& bytes, const std::string& what) {
    TempDir t{"evidence-damage-copy"};
    std::string path = (t.path / "evidence.db").string();
    vitro::write_file_atomic(path, bytes);
    vitro::write_file_atomic((t.path / "head.key").string(), st.key);
    std::unique_ptr<EvidenceStore> s;
    VerifyResult v;
    try {
        s = std::make_unique<EvidenceStore>(path, false);
        v = s->verify();
    } catch (const Error&) {
        return Verdict::kFailed;  // as `vitro evidence verify` exits non-zero
    }
    if (!v.ok) return Verdict::kFailed;
    EXPECT_EQ(v.count, st.count) << what << ": verify OK with another count";
    try {
        Contents c = contents_of(*s);
        EXPECT_TRUE(same(c.all, st.clean.all)) << what << ": verify OK but the walk differs";
        for (const auto& [id, recs] : st.clean.by_container)
            EXPECT_TRUE(same(c.by_container[id], recs))
                << what << ": verify OK but export of " << id.substr(0, 4) << " has " << c.by_container[id].size()
                << " records, not " << recs.size();
        for (const auto& [k, recs] : st.clean.by_kind)
            EXPECT_TRUE(same(c.by_kind[k], recs)) << what << ": verify OK but " << k << " records differ";
    } catch (const Error& e) {
        ADD_FAILURE() << what << ": verify OK but reading fails: " << e.what();
    }
    return Verdict::kIntact;
}

}  // namespace evidence_damage

// The index entry of one record names another container (one bit of its
// container_id): the walk of the table still finds every record, but the
// export's segment would lose that one. Verify must say so, not "OK".
TEST(EvidenceDamage, AFlippedBitInTheIndexFailsVerify) {
    using namespace evidence_damage;
    Store st;
    size_t root = 0;
    {
        auto db = sql::Db::open(st.path, false);
        // The root page: a leaf or an interior page, each of whose cells is an entry.
        auto s = db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'records_by_container'");
        ASSERT_TRUE(s.step());
        root = static_cast<size_t>(s.int64(0));
    }
    size_t page = (root - 1) * st.page_size;
    std::string_view index_page(st.bytes.data() + page, st.page_size);
    size_t at = std::string::npos;
    for (const auto& id : kContainers)
        if ((at = index_page.find(id)) != std::string::npos) break;
    ASSERT_NE(at, std::string::npos) << "no container id in the index's root page";
    std::string b = st.bytes;
    b[page + at] = static_cast<char>(b[page + at] ^ 0x01);
    EXPECT_EQ(check_copy(st, b, "index byte " + std::to_string(page + at)), Verdict::kFailed);
}

// Every bit of sampled bytes: per page, a few of its non-zero bytes (cells,
// headers, pointers: what carries content) and one anywhere. Each flip on a
// fresh copy.
TEST(EvidenceDamage, NoSingleBitFlipHidesARecord) {
    using namespace evidence_damage;
    Store st;
    ASSERT_EQ(st.clean.all.size(), st.count);
    ASSERT_FALSE(fs::exists(st.path + "-wal") && fs::file_size(st.path + "-wal") > 0) << "the WAL was not checkpointed";
    std::mt19937 rng(12345);
    std::vector<size_t> positions;
    for (size_t page = 0; page < st.bytes.size(); page += st.page_size) {
        std::vector<size_t> used;
        for (size_t i = page; i < page + st.page_size && i < st.bytes.size(); ++i)
            if (st.bytes[i]) used.push_back(i);
        for (int k = 0; k < 6 && !used.empty(); ++k) positions.push_back(used[rng() % used.size()]);
        positions.push_back(page + rng() % st.page_size);
    }
    size_t failed = 0, intact = 0;
    for (size_t pos : positions) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string b = st.bytes;
            b[pos] = static_cast<char>(b[pos] ^ (1 << bit));
            (check_copy(st, b, "byte " + std::to_string(pos) + " bit " + std::to_string(bit)) == Verdict::kFailed
                 ? failed
                 : intact)++;
            if (HasFailure()) return;  // the first one says it all
        }
    }
    // Both outcomes happen: the sample reached content and spare space alike.
    EXPECT_GT(failed, 0u);
    EXPECT_GT(intact, 0u);
    std::printf("%zu pages, %zu flips: %zu found by verify, %zu harmless\n", st.bytes.size() / st.page_size,
                positions.size() * 8, failed, intact);
}
