#include "introspect/evidence/evidence_collect.hpp"

#include <fcntl.h>

#include <set>

#include "introspect/common/cgroup_counters.hpp"
#include "introspect/common/process_snapshot.hpp"
#include "introspect/evidence/evidence_archive.hpp"
#include "introspect/evidence/evidence_store.hpp"
#include "introspect/evidence/upper_diff.hpp"
#include "linux/namespaces.hpp"
#include "linux/procfs.hpp"
#include "linux/sock_diag.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/sha256.hpp"

namespace vitro::introspect {

namespace {

void check_alive(const CollectTarget& t) {
    if (!os::process_alive(t.init_pid, t.init_start_ticks))
        throw Error(ESRCH, "container " + t.name + " exited during the collection; no bundle written");
}

nlohmann::json socket_json(const os::InetSocket& s) {
    return {{"protocol", s.protocol}, {"state", s.state},       {"local_addr", s.local_addr},
            {"local_port", s.local_port}, {"peer_addr", s.peer_addr}, {"peer_port", s.peer_port},
            {"uid", s.uid},           {"inode", s.inode}};
}

}  // namespace

CollectSummary collect(const CollectTarget& t, EvidenceStore* store, size_t record_limit, const std::string& out_path) {
    CollectSummary sum;
    check_alive(t);
    const int64_t started = now_ns();

    nlohmann::json procs = nlohmann::json::array();
    for (pid_t pid : t.pids) {
        auto p = process_info(pid);
        if (!p) continue;  // exited meanwhile
        (*p)["open_files"] = open_files(pid);
        (*p)["namespaces"] = namespaces(pid);
        procs.push_back(std::move(*p));
    }
    sum.processes = procs.size();

    // Sockets: the whole network namespace when it is the container's own;
    // in a shared one (the host's), only those the container's processes hold.
    auto owners = socket_owners(t.pids);
    nlohmann::json socks = nlohmann::json::array();
    std::string net_path = "/proc/" + std::to_string(t.init_pid) + "/ns/net";
    UniqueFd netns(::open(net_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns) {
        check_alive(t);
        throw_errno("open", net_path);
    }
    const bool shared_net = os::namespace_inode(t.init_pid, "net") == os::namespace_inode(::getpid(), "net");
    auto diag = os::open_sock_diag(netns.get());
    for (const auto& s : os::dump_inet_sockets(diag.get())) {
        auto it = owners.find(s.inode);
        if (shared_net && it == owners.end()) continue;
        auto j = socket_json(s);
        j["owners"] = it == owners.end() ? nlohmann::json::array() : it->second;
        socks.push_back(std::move(j));
    }
    sum.sockets = socks.size();

    nlohmann::json mnts = mounts(t.init_pid);
    nlohmann::json nss = namespaces(t.init_pid);
    nlohmann::json cg = cgroup_counters(t.init_pid);
    if (!t.stats.is_null()) cg["stats"] = t.stats;
    nlohmann::json diff = nlohmann::json::array();
    std::vector<BundleMember> copies;
    if (!t.upper_dir.empty()) {
        diff = upper_diff(t.upper_dir, t.layers);
        UniqueFd upper(::open(t.upper_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
        size_t total = 0;
        std::set<std::string> copied;
        for (auto& e : diff) {
            if (!upper || t.copy_max_file == 0 || e.value("type", "") != "file" || !e.contains("sha256")) continue;
            const std::string sha = e["sha256"];
            const std::string name = "file-" + sha.substr(7);
            if (copied.count(sha)) {
                e["copied_as"] = name;
                continue;
            }
            if (e.value("size", uint64_t{0}) > t.copy_max_file || total + e.value("size", uint64_t{0}) > t.copy_max_total)
                continue;
            auto data = read_upper_file(upper.get(), e["path"].get<std::string>().substr(1), t.copy_max_file);
            // Changed since it was hashed: the hash stands, the copy would not match it.
            if (!data || sha256_digest(*data) != sha) continue;
            total += data->size();
            copied.insert(sha);
            e["copied_as"] = name;
            copies.push_back({name, std::move(*data)});
        }
    }
    sum.changes = diff.size();
    sum.files_copied = copies.size();
    check_alive(t);  // everything above describes a container that was there throughout

    std::vector<EvidenceRecord> segment;
    if (store) segment = store->segment_for(t.id, 0, INT64_MAX, record_limit);
    sum.records = segment.size();

    nlohmann::json manifest = {{"type", "collect"},
                               {"container", {{"id", t.id}, {"name", t.name}}},
                               {"collected_from_ns", started},
                               {"collected_until_ns", now_ns()},
                               {"chain", chain_manifest(segment)}};
    std::vector<BundleMember> members = {
        {"container.json", t.container.dump(2) + "\n"},
        {"processes.json", procs.dump(2) + "\n"},
        {"sockets.json", socks.dump(2) + "\n"},
        {"mounts.json", mnts.dump(2) + "\n"},
        {"namespaces.json", nss.dump(2) + "\n"},
        {"cgroup.json", cg.dump(2) + "\n"},
        {"fs-diff.json", diff.dump(2) + "\n"},
        {"records.jsonl", records_jsonl(segment)},
    };
    for (auto& c : copies) members.push_back(std::move(c));
    write_bundle(out_path, manifest, members);
    return sum;
}

}  // namespace vitro::introspect
