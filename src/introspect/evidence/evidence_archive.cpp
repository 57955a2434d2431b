#include "introspect/evidence/evidence_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "util/error.hpp"
#include "util/file.hpp"
#include "util/sha256.hpp"
#include "util/time.hpp"

namespace vitro::introspect {

namespace {

constexpr const char* kFormat = "vitro-evidence-bundle/1";

struct ArchiveWriteDeleter {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveReadDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryDeleter {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};

la_ssize_t append_cb(archive*, void* client, const void* buf, size_t n) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
}

// The canonical tar of `members` (see the header), in memory.
std::string canonical_tar(const std::vector<BundleMember>& members) {
    std::string out;
    std::unique_ptr<archive, ArchiveWriteDeleter> a(archive_write_new());
    if (archive_write_set_format_ustar(a.get()) != ARCHIVE_OK ||
        archive_write_open(a.get(), &out, nullptr, append_cb, nullptr) != ARCHIVE_OK)
        throw Error(std::string("tar writer: ") + archive_error_string(a.get()));
    for (const auto& m : members) {
        std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
        archive_entry_set_pathname(e.get(), m.name.c_str());
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(m.data.size()));
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), 0444);
        archive_entry_set_mtime(e.get(), 0, 0);
        if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK ||
            (!m.data.empty() && archive_write_data(a.get(), m.data.data(), m.data.size()) < 0))
            throw Error(std::string("tar writer: ") + m.name + ": " + archive_error_string(a.get()));
    }
    if (archive_write_close(a.get()) != ARCHIVE_OK) throw Error(std::string("tar writer: ") + archive_error_string(a.get()));
    return out;
}

// All members of a tar held in memory, in order; regular files only.
std::vector<BundleMember> untar(const std::string& bytes, const std::string& what) {
    std::unique_ptr<archive, ArchiveReadDeleter> a(archive_read_new());
    archive_read_support_format_tar(a.get());  // tar only: no filters, no other formats
    if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK)
        throw Error(EINVAL, what + ": not a tar archive: " + archive_error_string(a.get()));
    std::vector<BundleMember> out;
    archive_entry* e = nullptr;
    for (;;) {
        int rc = archive_read_next_header(a.get(), &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK) throw Error(EINVAL, what + ": damaged tar archive: " + archive_error_string(a.get()));
        const char* name = archive_entry_pathname(e);
        if (!name || archive_entry_filetype(e) != AE_IFREG)
            throw Error(EINVAL, what + ": member " + (name ? name : "?") + " is not a regular file");
        BundleMember m{name, {}};
        char buf[65536];
        for (;;) {
            la_ssize_t n = archive_read_data(a.get(), buf, sizeof buf);
            if (n < 0) throw Error(EINVAL, what + ": member " + m.name + ": " + archive_error_string(a.get()));
            if (n == 0) break;
            m.data.append(buf, static_cast<size_t>(n));
        }
        out.push_back(std::move(m));
    }
    return out;
}

std::string read_whole(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno("open", path);
    return read_fd(fd.get());
}

}  // namespace

nlohmann::json chain_manifest(const std::vector<EvidenceRecord>& segment) {
    if (segment.empty()) return {{"count", 0}};
    size_t redacted = 0;
    for (const auto& r : segment) redacted += r.redacted();
    return {{"first_seq", segment.front().seq},
            {"last_seq", segment.back().seq},
            {"first_prev_hash", segment.front().prev_hash},
            {"last_hash", segment.back().hash},
            {"count", segment.size()},
            {"redacted", redacted}};
}

std::string records_jsonl(const std::vector<EvidenceRecord>& segment) {
    std::string out;
    for (const auto& r : segment) out += r.to_json().dump() + "\n";
    return out;
}

void write_bundle(const std::string& path, nlohmann::json manifest, const std::vector<BundleMember>& members) {
    manifest["format"] = kFormat;
    manifest["created"] = rfc3339_now();
    manifest["members"] = nlohmann::json::array();
    for (const auto& m : members) {
        if (m.name.empty() || m.name.find('/') != std::string::npos || m.name == "manifest.json" || m.name == "manifest.sha256")
            throw Error(EINVAL, "bundle member name \"" + m.name + "\" not allowed");
        manifest["members"].push_back({{"name", m.name}, {"size", m.data.size()}, {"sha256", sha256_digest(m.data)}});
    }
    std::vector<BundleMember> all;
    all.push_back({"manifest.json", manifest.dump(2) + "\n"});
    all.insert(all.end(), members.begin(), members.end());
    all.push_back({"manifest.sha256", sha256_digest(all.front().data) + "\n"});
    std::string bytes = canonical_tar(all);
    // Temp name in the same directory, fsync, rename: readers see all or nothing.
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) throw_errno("create", tmp);
    try {
        write_all(fd.get(), bytes, tmp);
        if (::fsync(fd.get()) < 0) throw_errno("fsync", tmp);
        fd.reset();
        if (::rename(tmp.c_str(), path.c_str()) < 0) throw_errno("rename", tmp + " to " + path);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

const BundleMember* Bundle::find(const std::string& name) const {
    for (const auto& m : members)
        if (m.name == name) return &m;
    return nullptr;
}

Bundle read_bundle(const std::string& path) {
    auto all = untar(read_whole(path), path);
    if (all.empty() || all.front().name != "manifest.json")
        throw Error(EINVAL, path + ": not an evidence bundle (manifest.json is not the first member)");
    Bundle b;
    try {
        b.manifest = nlohmann::json::parse(all.front().data);
    } catch (const std::exception& e) {
        throw Error(EINVAL, path + ": manifest.json is not valid JSON: " + e.what());
    }
    for (size_t i = 1; i < all.size(); ++i)
        if (all[i].name != "manifest.sha256") b.members.push_back(std::move(all[i]));
    return b;
}

VerifyResult verify_bundle(const std::string& path) {
    return verify_bundle_bytes(read_whole(path), path);  // an unreadable file is an Error, not a verdict
}

VerifyResult verify_bundle_bytes(const std::string& bytes, const std::string& path) {
    VerifyResult res;
    std::vector<BundleMember> all;
    (void)path;  // the caller names the input; messages here say what is wrong with it
    try {
        all = untar(bytes, "the file");
    } catch (const Error& e) {
        res.fail(std::nullopt, e.what());
        return res;
    }
    if (all.size() < 2 || all.front().name != "manifest.json" || all.back().name != "manifest.sha256") {
        res.fail(std::nullopt, "not an evidence bundle: manifest.json must come first and manifest.sha256 last");
        return res;
    }
    nlohmann::json manifest;
    try {
        manifest = nlohmann::json::parse(all.front().data);
    } catch (const std::exception& e) {
        res.fail(std::nullopt, std::string("manifest.json is not valid JSON: ") + e.what());
        return res;
    }
    // A field of the wrong type (a number where a name should be, say) makes
    // nlohmann's value()/get() throw: that is a verdict on the manifest too.
    try {
        if (!manifest.is_object() || manifest.value("format", "") != kFormat || !manifest.contains("members") ||
            !manifest["members"].is_array()) {
            res.fail(std::nullopt, std::string("manifest.json: not a ") + kFormat + " manifest");
            return res;
        }
        // The records first, so that a damaged record is named by its seq.
        for (const auto& m : all) {
            if (m.name != "records.jsonl") continue;
            std::vector<EvidenceRecord> recs;
            size_t line_no = 0, start = 0;
            while (start < m.data.size()) {
                size_t nl = m.data.find('\n', start);
                if (nl == std::string::npos) nl = m.data.size();
                ++line_no;
                try {
                    recs.push_back(EvidenceRecord::from_json(nlohmann::json::parse(m.data.substr(start, nl - start))));
                } catch (const std::exception& e) {
                    std::optional<uint64_t> guess;
                    if (!recs.empty()) guess = recs.back().seq + 1;
                    res.fail(guess, "records.jsonl line " + std::to_string(line_no) + " is not a valid record: " + e.what());
                    return res;
                }
                start = nl + 1;
            }
            const auto& chain = manifest.value("chain", nlohmann::json::object());
            if (recs.empty()) {
                if (chain.value("count", 0) != 0) res.fail(std::nullopt, "records.jsonl is empty but the manifest counts records");
                break;
            }
            try {
                res = verify_chain(recs, chain.at("first_seq").get<uint64_t>(), chain.at("first_prev_hash").get<std::string>());
                if (!res.ok) return res;
                if (res.last_hash != chain.at("last_hash").get<std::string>())
                    res.fail(recs.back().seq, "the last record's hash is not the manifest's chain.last_hash");
                else if (recs.size() != chain.at("count").get<size_t>() || recs.back().seq != chain.at("last_seq").get<uint64_t>())
                    res.fail(recs.back().seq, "the manifest's chain.count/last_seq do not match the records");
            } catch (const nlohmann::json::exception& e) {
                res.fail(std::nullopt, std::string("manifest.json: chain: ") + e.what());
            }
            if (!res.ok) return res;
        }
        // Each member against the manifest, in order, nothing missing or extra.
        const auto& listed = manifest["members"];
        if (listed.size() + 2 != all.size()) {
            res.fail(std::nullopt, "the manifest lists " + std::to_string(listed.size()) + " members, the tar holds " +
                                       std::to_string(all.size() - 2));
            return res;
        }
        for (size_t i = 0; i < listed.size(); ++i) {
            const auto& m = all[i + 1];
            const auto& l = listed[i];
            if (!l.is_object() || l.value("name", "") != m.name || l.value("size", uint64_t{0}) != m.data.size() ||
                l.value("sha256", "") != sha256_digest(m.data)) {
                res.fail(std::nullopt, "member " + m.name + " does not match the manifest (name, size or SHA-256)");
                return res;
            }
        }
        if (all.back().data != sha256_digest(all.front().data) + "\n") {
            res.fail(std::nullopt, "manifest.sha256 does not match manifest.json (the manifest was changed)");
            return res;
        }
        // Finally every byte: the canonical rebuild must be this file.
        std::string rebuilt = canonical_tar(all);
        if (rebuilt != bytes) {
            size_t at = 0;
            while (at < rebuilt.size() && at < bytes.size() && rebuilt[at] == bytes[at]) ++at;
            res.fail(std::nullopt, "the tar is not in canonical form: byte " + std::to_string(at) +
                                       " differs (a header, padding or trailer was changed)");
            return res;
        }
        if (res.count == 0) res.last_hash = manifest.value("chain", nlohmann::json::object()).value("last_hash", "");
    } catch (const nlohmann::json::exception& e) {
        res.fail(std::nullopt, std::string("manifest.json: a field has the wrong type: ") + e.what());
    }
    return res;
}

}  // namespace vitro::introspect
