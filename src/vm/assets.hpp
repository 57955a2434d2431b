// What a microVM boots: Debian's kernel as an uncompressed vmlinux with the
// virtio modules the agent loads (scripts/vm-kernel.sh puts them in a
// directory), and an initramfs that vitro makes from those modules and its
// static vitro-agent (cached: made again when either changes).
#pragma once

#include <string>

namespace vitro::vm {

struct GuestAssets {
    std::string kernel;     // vmlinux
    std::string initramfs;  // cpio (newc)
    std::string release;    // the kernel's release, e.g. 6.1.0-57-cloud-amd64
};

// $VITRO_VM_DIR, else /usr/lib/vitro/vm.
std::string default_kernel_dir();

// Checks `kernel_dir` (vmlinux an ELF, modules/order and each module there)
// and `agent` (an executable), and makes the initramfs under `cache_dir` if
// none is there for them. Throws Error naming what is missing or wrong, and
// how to get it.
GuestAssets prepare_assets(const std::string& kernel_dir, const std::string& agent, const std::string& cache_dir);

}  // namespace vitro::vm
