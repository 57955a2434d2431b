// Namespace types by their OCI names, and joining one by path.
#pragma once

#include <string>

namespace vitro::os {

// "network" -> CLONE_NEWNET; 0 for an unknown name.
int namespace_flag(const std::string& oci_type);
// "network" -> "net" (the /proc/<pid>/ns/ entry name).
const char* namespace_proc_name(const std::string& oci_type);
// Opens `path` and setns()s into it, checking it is a namespace of that type.
void join_namespace(const std::string& path, const std::string& oci_type);
// Inode of /proc/<pid>/ns/<name> (0 if unreadable), to compare namespaces.
unsigned long namespace_inode(int pid, const char* proc_name);

}  // namespace vitro::os
