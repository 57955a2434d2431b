// Evidence bundles: one tar file an analyst checks offline with
// `vitro evidence verify BUNDLE`.
//
// Layout, in this order: manifest.json (format, type, creation time, what
// it is about, and each member's name, size and SHA-256), the members, and
// manifest.sha256 (the SHA-256 of manifest.json). Every header is written
// canonically (ustar, mode 0444, uid/gid 0, mtime 0, no user names), so that
// verify can rebuild the tar from the members it read and compare the whole
// file byte for byte: a changed byte anywhere (a header, padding, the end
// blocks) is found even where tar itself would not notice. A records.jsonl
// member is a chain segment (hash_chain.hpp) and is checked record by record
// against manifest "chain" (first_seq, first_prev_hash, last_hash, count).
//
// What this proves: the bundle is the one written (nothing changed since),
// and its records are a contiguous, unaltered part of a chain. It cannot
// prove the writer was honest: compare "chain.last_hash" / "first_prev_hash"
// with the live store (`vitro evidence verify --store`) or a copy kept elsewhere.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "introspect/evidence/hash_chain.hpp"

namespace vitro::introspect {

struct BundleMember {
    std::string name;  // flat names (no '/')
    std::string data;
};

// Writes the bundle to `path` through a temporary file in the same
// directory and a rename: nothing half-written is ever at `path`.
// `manifest` holds what the caller wants said ("type", "container", "chain");
// "format", "created" and "members" are filled in here.
void write_bundle(const std::string& path, nlohmann::json manifest, const std::vector<BundleMember>& members);

// The chain part of a manifest for a segment (first_seq, last_seq,
// first_prev_hash, last_hash, count, redacted).
nlohmann::json chain_manifest(const std::vector<EvidenceRecord>& segment);
// records.jsonl text: one record per line.
std::string records_jsonl(const std::vector<EvidenceRecord>& segment);

struct Bundle {
    nlohmann::json manifest;
    std::vector<BundleMember> members;  // without manifest.json and manifest.sha256
    const BundleMember* find(const std::string& name) const;
};
// Reads a bundle without checking it (throws Error naming the file when it
// is not a readable tar with a manifest.json).
Bundle read_bundle(const std::string& path);

// Checks everything described above. Never throws for a damaged bundle: the
// result says what is wrong (and names the first bad record when it is one).
VerifyResult verify_bundle(const std::string& path);
// The same for a bundle already in memory (`what` names it in messages).
VerifyResult verify_bundle_bytes(const std::string& bytes, const std::string& what);

}  // namespace vitro::introspect
