#include "linux/namespaces.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include "util/error.hpp"
#include "util/fd.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace vitro::os {

namespace {
struct NsType {
    const char* oci;
    const char* proc;
    int flag;
};
constexpr NsType kTypes[] = {
    {"pid", "pid", CLONE_NEWPID},          {"network", "net", CLONE_NEWNET}, {"mount", "mnt", CLONE_NEWNS},
    {"ipc", "ipc", CLONE_NEWIPC},          {"uts", "uts", CLONE_NEWUTS},     {"user", "user", CLONE_NEWUSER},
    {"cgroup", "cgroup", CLONE_NEWCGROUP}, {"time", "time", CLONE_NEWTIME},
};
}  // namespace

int namespace_flag(const std::string& t) {
    for (const auto& n : kTypes)
        if (t == n.oci) return n.flag;
    return 0;
}

const char* namespace_proc_name(const std::string& t) {
    for (const auto& n : kTypes)
        if (t == n.oci) return n.proc;
    return "";
}

void join_namespace(const std::string& path, const std::string& oci_type) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno("open " + oci_type + " namespace", path);
    if (::setns(fd.get(), namespace_flag(oci_type)) < 0) throw_errno("join " + oci_type + " namespace", path);
}

unsigned long namespace_inode(int pid, const char* proc_name) {
    std::string p = "/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/ns/" + proc_name;
    struct stat st;
    if (::stat(p.c_str(), &st) < 0) return 0;
    return st.st_ino;
}

}  // namespace vitro::os
