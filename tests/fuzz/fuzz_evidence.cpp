// libFuzzer target: `vitro evidence verify BUNDLE` reads a tar an analyst was
// handed, from anywhere. verify_bundle_bytes must never crash, hang, leak or
// throw on any input (a damaged bundle is a verdict, not an exception), and
// a bundle it passes must name the records it checked.
//
// Seeds: with VITRO_FUZZ_SEED_DIR set, LLVMFuzzerInitialize writes a valid
// bundle there (written by the real writer, a three-record chain segment and
// a second member), so the corpus starts from what vitro itself produces.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "introspect/evidence/evidence_archive.hpp"
#include "util/sha256.hpp"

using namespace vitro::introspect;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* dir = std::getenv("VITRO_FUZZ_SEED_DIR");
    if (!dir) return 0;
    std::vector<EvidenceRecord> seg;
    std::string prev = "sha256:" + std::string(64, '0');
    for (uint64_t seq = 1; seq <= 3; ++seq) {
        EvidenceRecord r;
        r.seq = seq;
        r.time_ns = 1700000000000000000LL + static_cast<int64_t>(seq);
        r.container_id = std::string(64, 'a');
        r.kind = seq == 2 ? "net.listen" : "process.exec";
        if (seq != 3) r.payload = R"({"pid":)" + std::to_string(100 + seq) + R"(,"cmdline":["sh","-c","x"]})";
        r.payload_sha256 = vitro::sha256_digest(r.payload.value_or("redacted"));
        r.prev_hash = prev;
        r.hash = compute_hash(r);
        prev = r.hash;
        seg.push_back(r);
    }
    nlohmann::json manifest = {{"type", "export"}, {"container", std::string(64, 'a')}, {"chain", chain_manifest(seg)}};
    write_bundle(std::string(dir) + "/seed-valid.tar", manifest,
                 {{"records.jsonl", records_jsonl(seg)}, {"processes.json", R"([{"pid":1,"comm":"sh"}])"}});
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    VerifyResult r;
    try {
        r = verify_bundle_bytes(bytes, "fuzz.tar");
    } catch (...) {
        std::abort();  // the contract: a verdict, never an exception
    }
    if (!r.ok && r.problem.empty()) std::abort();  // a failure always says what is wrong
    return 0;
}
