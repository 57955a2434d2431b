#include "net/host_rules.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "net/networks.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/subprocess.hpp"

namespace vitro::net {

namespace {

constexpr int kTimeoutS = 30;

std::vector<std::string> command(const HostRules::Rule& r, const std::string& op) {
    std::vector<std::string> argv = {r.binary, "-w", "-t", r.table, op, r.chain};
    argv.insert(argv.end(), r.args.begin(), r.args.end());
    return argv;
}

// -C: whether the rule is there (iptables exits 1 when it is not).
bool present(const HostRules::Rule& r) {
    RunResult res = run_program(require_program(r.binary), command(r, "-C"), {}, "", kTimeoutS);
    return !res.timed_out && WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0;
}

// The network namespace this process is in and the rules: what the marker holds.
std::string marker_key(const HostRules& r) {
    struct stat st {};
    if (::stat("/proc/self/ns/net", &st) < 0) throw_errno("stat", "/proc/self/ns/net");
    std::string key = "netns " + std::to_string(st.st_ino) + "\n";
    for (const auto& rule : r.rules()) {
        for (const auto& a : command(rule, "-I")) key += a + " ";
        key += "\n";
    }
    return key;
}

class StateLock {
public:
    explicit StateLock(const std::string& dir) {
        make_dirs(dir, 0700);
        std::string path = dir + "/.lock";
        fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!fd_) throw_errno("open", path);
        if (::flock(fd_.get(), LOCK_EX) < 0) throw_errno("lock", path);
    }

private:
    UniqueFd fd_;  // closing it releases the lock
};

}  // namespace

std::vector<HostRules::Rule> HostRules::rules() const {
    std::vector<Rule> out;
    const std::vector<std::string> tag = {"-m", "comment", "--comment", "vitro network " + network};
    for (const auto& s : subnets) {
        const std::string bin = s.find(':') == std::string::npos ? "iptables" : "ip6tables";
        auto rule = [&](std::string table, std::string chain, std::vector<std::string> args) {
            args.insert(args.end(), tag.begin(), tag.end());
            out.push_back({bin, std::move(table), std::move(chain), std::move(args)});
        };
        if (masquerade) rule("nat", "POSTROUTING", {"-s", s, "!", "-d", s, "-j", "MASQUERADE"});
        rule("filter", "FORWARD", {"-s", s, "-j", "ACCEPT"});
        rule("filter", "FORWARD", {"-d", s, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"});
    }
    return out;
}

std::optional<HostRules> host_rules_of(const NetworkConfigList& list) {
    auto v = list.raw.find("vitro");
    if (v == list.raw.end() || !v->is_object() || v->value("hostRules", false) != true) return std::nullopt;
    HostRules r;
    r.network = list.name;
    r.subnets = subnets_of(list);
    r.masquerade = v->value("ipMasq", true);
    return r;
}

void ensure_host_rules(const HostRules& r, const std::string& state_dir) {
    const std::string marker = state_dir + "/" + r.network;
    StateLock lock(state_dir);
    const std::string key = marker_key(r);
    if (path_exists(marker)) {
        try {
            if (read_file(marker) == key) return;
        } catch (const Error&) {
            // No marker, or unreadable: the rules are (re)checked and made below
        }
    }
    std::vector<HostRules::Rule> made;
    try {
        for (const auto& rule : r.rules()) {
            if (present(rule)) continue;
            run_checked(command(rule, "-I"), kTimeoutS);
            made.push_back(rule);
        }
        write_file_atomic(marker, key, 0600);
    } catch (const Error& e) {
        for (const auto& rule : made) {
            try {
                run_checked(command(rule, "-D"), kTimeoutS);
            } catch (const Error&) {
                // Undo is best effort: the error that made us undo is rethrown below
            }
        }
        throw e.wrap("network \"" + r.network + "\": host rules");
    }
}

void remove_host_rules(const HostRules& r, const std::string& state_dir) {
    StateLock lock(state_dir);
    for (const auto& rule : r.rules()) {
        try {
            // A rule made twice (by hand, or before a crash) is deleted twice.
            for (int i = 0; i < 8 && present(rule); ++i) run_checked(command(rule, "-D"), kTimeoutS);
        } catch (const Error&) {
            // Removal is best effort: a rule that cannot be deleted is left and the next rule still tried
        }
    }
    ::unlink((state_dir + "/" + r.network).c_str());
}

void forget_host_rules(const std::string& network, const std::string& state_dir) {
    if (!path_exists(state_dir + "/" + network)) return;  // nothing to forget (and no dir to make)
    StateLock lock(state_dir);
    ::unlink((state_dir + "/" + network).c_str());
}

}  // namespace vitro::net
