// The VMM of one microVM: QEMU's `microvm` machine (Debian's qemu-system-x86)
// and the virtiofsd that serves it the container's rootfs. Both die with the
// process that launched them (PR_SET_PDEATHSIG), and with this object.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "vm/assets.hpp"

namespace vitro::vm {

struct VmShape {
    int memory_mib = 256;
    int cpus = 1;
};
// The least guest RAM that boots the guest kernel with its initramfs.
inline constexpr int kMinMemoryMib = 128;
// What the VMM needs beyond the guest's RAM (QEMU's code and translation
// cache, virtiofsd): a memory limit on a VM container is the guest's RAM
// plus this, the VM's overhead, as Kubernetes' RuntimeClass overhead.
inline constexpr int kVmmOverheadMib = 192;

// A host directory the guest mounts over virtiofs (one virtiofsd each): the
// container's rootfs (tag "rootfs") and its volumes. A read-only share is
// read-only on the host side too, not only in the guest's mount.
struct VmShare {
    std::string tag, source;
    bool readonly = false;
};

// "tcg" unless $VITRO_VM_ACCEL says "kvm": this machine's KVM (the PVM
// backend) does not boot a stock kernel, so KVM is asked for, not guessed.
std::string vm_accelerator();

class Vmm {
public:
    // Starts a virtiofsd per share and QEMU, whose agent port connects to
    // the unix socket `agent_socket` (listening already). Logs and sockets go
    // in `run_dir`. Throws Error with the VMM's own words when one fails to
    // start.
    Vmm(const GuestAssets& assets, const VmShape& shape, const std::string& run_dir,
        const std::vector<VmShare>& shares, const std::string& agent_socket);
    ~Vmm();
    Vmm(const Vmm&) = delete;
    Vmm& operator=(const Vmm&) = delete;

    pid_t qemu_pid() const { return qemu_; }
    // QEMU's wait status once it has exited (reaped here), else nullopt.
    std::optional<int> qemu_exited();
    // Waits up to `ms` for QEMU to exit (the guest powering off).
    bool wait_qemu(int ms);
    // The last lines of QEMU's output and the guest's console, for messages.
    std::string diagnostics() const;

private:
    std::string run_dir_;
    std::vector<pid_t> virtiofsd_;
    pid_t qemu_ = -1;
    std::optional<int> qemu_status_;
};

}  // namespace vitro::vm
