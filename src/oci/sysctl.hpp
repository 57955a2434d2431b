// Which kernel namespace a sysctl belongs to, and where it lives under /proc/sys.
//
// A container may set a sysctl only when the value is per namespace and the
// container has that namespace of its own: otherwise the write changes the
// host (kernel.core_pattern is a root code-execution path). The classes are
// runc's: net.* (network namespace), the System V IPC limits and fs.mqueue.*
// (IPC namespace), kernel.hostname and kernel.domainname (UTS namespace).
#pragma once

#include <string>

namespace vitro::oci {

// "network", "ipc" or "uts" (the linux.namespaces type), or "" for a sysctl
// that is host-wide. KEY is dotted (net.ipv4.ip_forward) or slashed
// (net/ipv4/conf/eth0.100/forwarding, where a dot is part of a name).
std::string sysctl_namespace(const std::string& key);

// The path of KEY under /proc/sys ("net/ipv4/ip_forward"); throws naming the
// key when it is empty or has an empty, "." or ".." component.
std::string sysctl_proc_path(const std::string& key);

}  // namespace vitro::oci
