#include "oci/sysctl.hpp"

#include <set>

#include "util/error.hpp"

namespace vitro::oci {

std::string sysctl_proc_path(const std::string& key) {
    std::string path = key;
    // The dotted form names no dot inside a component; the slashed one may.
    if (path.find('/') == std::string::npos)
        for (auto& c : path)
            if (c == '.') c = '/';
    if (path.empty()) throw Error("linux.sysctl: empty key");
    size_t start = 0;
    for (;;) {
        size_t end = path.find('/', start);
        std::string part = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (part.empty() || part == "." || part == "..")
            throw Error("linux.sysctl: bad key '" + key + "' (an empty, '.' or '..' component)");
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return path;
}

std::string sysctl_namespace(const std::string& key) {
    // The System V IPC limits that ipc_namespace holds (ipc/ipc_sysctl.c).
    static const std::set<std::string> ipc = {"kernel/msgmax", "kernel/msgmnb", "kernel/msgmni",
                                              "kernel/sem",    "kernel/shmall", "kernel/shmmax",
                                              "kernel/shmmni", "kernel/shm_rmid_forced"};
    std::string path = sysctl_proc_path(key);
    if (path.rfind("net/", 0) == 0) return "network";
    if (ipc.count(path) || path.rfind("fs/mqueue/", 0) == 0) return "ipc";
    if (path == "kernel/hostname" || path == "kernel/domainname") return "uts";
    return "";
}

}  // namespace vitro::oci
