// Capabilities: names <-> numbers, and applying the five OCI capability sets.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace vitro::os {

std::optional<int> capability_from_name(const std::string& name);  // "CAP_SYS_ADMIN"
std::string capability_name(int cap);
int last_capability();  // highest capability the running kernel knows

struct CapSets {
    std::vector<int> bounding, effective, inheritable, permitted, ambient;
};
CapSets cap_sets_from_names(const std::vector<std::string>& bounding, const std::vector<std::string>& effective,
                            const std::vector<std::string>& inheritable, const std::vector<std::string>& permitted,
                            const std::vector<std::string>& ambient);

// Drops every capability not in `bounding` from the bounding set (needs CAP_SETPCAP).
void apply_bounding(const CapSets& sets);
// Sets effective/permitted/inheritable, then raises the ambient ones.
void apply_process_caps(const CapSets& sets);
// Keep permitted caps across setuid() (PR_SET_KEEPCAPS).
void keep_caps(bool on);

}  // namespace vitro::os
