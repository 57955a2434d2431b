#include "linux/capabilities.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::os {

namespace {
constexpr std::array<const char*, 41> kNames = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};

std::vector<int> to_numbers(const std::vector<std::string>& names, const char* set) {
    std::vector<int> out;
    for (const auto& n : names) {
        auto c = capability_from_name(n);
        if (!c) throw Error(std::string("capabilities.") + set + ": unknown capability '" + n + "'");
        out.push_back(*c);
    }
    return out;
}

bool contains(const std::vector<int>& v, int c) {
    for (int x : v)
        if (x == c) return true;
    return false;
}
}  // namespace

std::optional<int> capability_from_name(const std::string& name) {
    for (size_t i = 0; i < kNames.size(); ++i)
        if (name == kNames[i]) return static_cast<int>(i);
    return std::nullopt;
}

std::string capability_name(int cap) {
    if (cap >= 0 && static_cast<size_t>(cap) < kNames.size()) return kNames[static_cast<size_t>(cap)];
    return "CAP_" + std::to_string(cap);
}

int last_capability() {
    static int last = [] {
        try {
            return std::stoi(read_file("/proc/sys/kernel/cap_last_cap"));
        } catch (...) {
            return static_cast<int>(kNames.size()) - 1;
        }
    }();
    return last;
}

CapSets cap_sets_from_names(const std::vector<std::string>& bounding, const std::vector<std::string>& effective,
                            const std::vector<std::string>& inheritable, const std::vector<std::string>& permitted,
                            const std::vector<std::string>& ambient) {
    return {to_numbers(bounding, "bounding"), to_numbers(effective, "effective"),
            to_numbers(inheritable, "inheritable"), to_numbers(permitted, "permitted"),
            to_numbers(ambient, "ambient")};
}

void apply_bounding(const CapSets& sets) {
    for (int c = 0; c <= last_capability(); ++c) {
        if (contains(sets.bounding, c)) continue;
        if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            throw_errno("drop capability from bounding set", capability_name(c));
    }
}

void apply_process_caps(const CapSets& sets) {
    __user_cap_header_struct hdr{};
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    hdr.pid = 0;
    __user_cap_data_struct data[2]{};
    auto set_bit = [&](auto member, int c) {
        if (c > last_capability()) return;  // unknown to this kernel: nothing to grant
        data[c / 32].*member |= 1u << (c % 32);
    };
    for (int c : sets.effective) set_bit(&__user_cap_data_struct::effective, c);
    for (int c : sets.permitted) set_bit(&__user_cap_data_struct::permitted, c);
    for (int c : sets.inheritable) set_bit(&__user_cap_data_struct::inheritable, c);
    if (::syscall(SYS_capset, &hdr, data) < 0) throw_errno("capset");
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        throw_errno("clear ambient capabilities");
    for (int c : sets.ambient) {
        if (c > last_capability()) continue;
        // The kernel refuses an ambient cap that is not permitted+inheritable;
        // runc and crun skip those silently, as does vitro.
        if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EPERM)
            throw_errno("raise ambient capability", capability_name(c));
    }
}

void keep_caps(bool on) {
    if (::prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0) < 0) throw_errno("prctl PR_SET_KEEPCAPS");
}

}  // namespace vitro::os
