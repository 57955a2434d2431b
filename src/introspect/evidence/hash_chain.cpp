#include "introspect/evidence/hash_chain.hpp"

#include "util/error.hpp"
#include "util/sha256.hpp"

namespace vitro::introspect {

namespace {

void netstring(std::string& out, std::string_view v) {
    out += std::to_string(v.size());
    out += ':';
    out += v;
    out += ',';
}

}  // namespace

std::string canonical_encoding(const EvidenceRecord& r) {
    std::string out = "vitro-evidence/1\n";
    netstring(out, std::to_string(r.seq));
    netstring(out, std::to_string(r.time_ns));
    netstring(out, r.container_id);
    netstring(out, r.kind);
    netstring(out, r.payload_sha256);
    netstring(out, r.prev_hash);
    return out;
}

std::string compute_hash(const EvidenceRecord& r) { return sha256_digest(canonical_encoding(r)); }

nlohmann::json EvidenceRecord::to_json() const {
    nlohmann::json j = {{"seq", seq},
                        {"time_ns", time_ns},
                        {"container_id", container_id},
                        {"kind", kind},
                        {"payload_sha256", payload_sha256},
                        {"prev_hash", prev_hash},
                        {"hash", hash}};
    if (payload) j["payload"] = *payload;  // as text: the hashed bytes, exactly
    return j;
}

EvidenceRecord EvidenceRecord::from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw Error(EINVAL, "record is not a JSON object");
    auto str = [&](const char* k) {
        auto it = j.find(k);
        if (it == j.end() || !it->is_string()) throw Error(EINVAL, std::string("record field \"") + k + "\" missing or not a string");
        return it->get<std::string>();
    };
    auto num = [&](const char* k) {
        auto it = j.find(k);
        if (it == j.end() || !it->is_number_integer()) throw Error(EINVAL, std::string("record field \"") + k + "\" missing or not an integer");
        return *it;
    };
    EvidenceRecord r;
    r.seq = num("seq").get<uint64_t>();
    r.time_ns = num("time_ns").get<int64_t>();
    r.container_id = str("container_id");
    r.kind = str("kind");
    r.payload_sha256 = str("payload_sha256");
    r.prev_hash = str("prev_hash");
    r.hash = str("hash");
    if (j.contains("payload")) r.payload = str("payload");
    if (j.size() != (r.payload ? 8u : 7u)) throw Error(EINVAL, "record has unknown fields");
    return r;
}

VerifyResult verify_chain(const std::vector<EvidenceRecord>& records, uint64_t first_seq, const std::string& first_prev) {
    VerifyResult res;
    std::string prev = first_prev;
    uint64_t expect = first_seq;
    for (const auto& r : records) {
        if (r.seq != expect) {
            res.fail(r.seq, r.seq > expect
                                ? "record " + std::to_string(expect) +
                                      (r.seq - 1 > expect ? ".." + std::to_string(r.seq - 1) : std::string()) +
                                      " missing before it (removed)"
                                : "out of order: found after record " + std::to_string(expect - 1) +
                                      " (reordered or inserted)");
            break;
        }
        if (r.payload && sha256_digest(*r.payload) != r.payload_sha256) {
            res.fail(r.seq, "payload does not match its payload_sha256 (the payload was changed)");
            break;
        }
        if (compute_hash(r) != r.hash) {
            res.fail(r.seq, "hash does not match the record's fields (a field was changed)");
            break;
        }
        if (r.prev_hash != prev) {
            res.fail(r.seq, r.seq == first_seq
                                ? "prev_hash is not the chain anchor " + first_prev + " (records before it were changed or removed)"
                                : "prev_hash is not the hash of record " + std::to_string(r.seq - 1) +
                                      " (record " + std::to_string(r.seq - 1) + " was changed and re-hashed, or replaced)");
            break;
        }
        prev = r.hash;
        ++expect;
        ++res.count;
    }
    res.last_hash = prev;
    return res;
}

}  // namespace vitro::introspect
