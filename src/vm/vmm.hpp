// The VMM of one microVM: QEMU's `microvm` machine (Debian's qemu-system-x86)
// and the virtiofsd that serves it the container's rootfs. Both die with the
// process that launched them (PR_SET_PDEATHSIG), and with this object.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

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

// "tcg" unless $VITRO_VM_ACCEL says "kvm": this machine's KVM (the PVM
// backend) does not boot a stock kernel, so KVM is asked for, not guessed.
std::string vm_accelerator();

class Vmm {
public:
    // Starts virtiofsd on `shared_dir` (tag "rootfs") and QEMU, whose agent
    // port connects to the unix socket `agent_socket` (listening already).
    // Logs and sockets go in `run_dir`. Throws Error with the VMM's own words
    // when either fails to start.
    Vmm(const GuestAssets& assets, const VmShape& shape, const std::string& run_dir, const std::string& shared_dir,
        const std::string& agent_socket);
    ~Vmm();
    Vmm(const Vmm&) = delete;
    Vmm& operator=(const Vmm&) = delete;

    pid_t qemu_pid() const { return qemu_; }
    pid_t virtiofsd_pid() const { return virtiofsd_; }
    // QEMU's wait status once it has exited (reaped here), else nullopt.
    std::optional<int> qemu_exited();
    // Waits up to `ms` for QEMU to exit (the guest powering off).
    bool wait_qemu(int ms);
    // The last lines of QEMU's output and the guest's console, for messages.
    std::string diagnostics() const;

private:
    std::string run_dir_;
    pid_t virtiofsd_ = -1, qemu_ = -1;
    std::optional<int> qemu_status_;
};

}  // namespace vitro::vm
