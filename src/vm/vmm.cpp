#include "vm/vmm.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <thread>
#include <vector>

#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"

namespace vitro::vm {

namespace {

constexpr const char* kQemu = "qemu-system-x86_64";
constexpr const char* kVirtiofsd = "/usr/lib/qemu/virtiofsd";

// fork + exec with stdin /dev/null, stdout and stderr to `log`, no fd of
// ours, and death with our process. `readonly_dir`: made read-only for the
// program, in a mount namespace of its own (gone with it: nothing to undo).
pid_t spawn(const std::vector<std::string>& argv, const std::string& log, const std::string& readonly_dir = "") {
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork", argv[0]);
    if (pid > 0) return pid;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int null = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (null < 0 || out < 0) ::_exit(127);
    if (!readonly_dir.empty() &&
        (::unshare(CLONE_NEWNS) < 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) < 0 ||
         ::mount(readonly_dir.c_str(), readonly_dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0 ||
         ::mount(nullptr, readonly_dir.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) < 0)) {
        ::dprintf(out, "read-only share %s: %s\n", readonly_dir.c_str(), std::strerror(errno));
        ::_exit(127);
    }
    ::dup2(null, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
}

std::string tail_of(const std::string& path, size_t max) {
    try {
        std::string s = read_file(path);
        return s.size() > max ? s.substr(s.size() - max) : s;
    } catch (const Error&) {
        return {};
    }
}

void kill_and_reap(pid_t& pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
}

// TCG's translation cache defaults to 1 GiB in system mode; a guest that
// runs one container needs little of it, and each VM's cache is its own
// (not shared) memory: $VITRO_VM_TB_MIB sizes it (MiB).
std::string accel_arg() {
    std::string a = vm_accelerator();
    if (a != "tcg") return a;
    const char* tb = std::getenv("VITRO_VM_TB_MIB");
    return "tcg,tb-size=" + std::string(tb && *tb ? tb : "32");
}

}  // namespace

std::string vm_accelerator() {
    const char* a = std::getenv("VITRO_VM_ACCEL");
    if (!a || !*a) return "tcg";
    std::string s = a;
    if (s != "tcg" && s != "kvm") throw Error(EINVAL, "$VITRO_VM_ACCEL=" + s + ": use tcg or kvm");
    return s;
}

Vmm::Vmm(const GuestAssets& assets, const VmShape& shape, const std::string& run_dir,
         const std::vector<VmShare>& shares, const std::string& agent_socket)
    : run_dir_(run_dir) {
    std::vector<std::string> devices;
    try {
        for (size_t i = 0; i < shares.size(); ++i) {
            const VmShare& sh = shares[i];
            const std::string n = std::to_string(i), sock = run_dir + "/fs" + n + ".sock",
                              log = run_dir + "/virtiofsd" + n + ".log";
            pid_t pid = spawn({kVirtiofsd, "--socket-path=" + sock, "-o", "source=" + sh.source, "-o", "cache=auto",
                               "-o", "xattr"},
                              log, sh.readonly ? sh.source : "");
            virtiofsd_.push_back(pid);
            // QEMU connects to virtiofsd's socket at start: wait until it listens.
            for (int t = 0; t < 500 && !path_exists(sock); ++t) {
                int st;
                if (::waitpid(pid, &st, WNOHANG) == pid) {
                    virtiofsd_.back() = -1;
                    throw Error(EIO, "virtiofsd for " + sh.source + " exited at start: " + tail_of(log, 400));
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            if (!path_exists(sock))
                throw Error(ETIMEDOUT, "virtiofsd for " + sh.source + " did not open " + sock + " within 5 s");
            devices.insert(devices.end(), {"-chardev", "socket,id=fs" + n + ",path=" + sock, "-device",
                                           "vhost-user-fs-device,chardev=fs" + n + ",tag=" + sh.tag});
        }
    } catch (...) {
        for (pid_t& pid : virtiofsd_) kill_and_reap(pid);
        throw;
    }
    const std::string mem = std::to_string(shape.memory_mib) + "M";
    // lpj and tsc_early_khz: no calibration loops under TCG (they can hang
    // early boot); panic=-1 + -no-reboot: a guest panic ends QEMU.
    const std::string cmdline = "console=ttyS0 quiet panic=-1 reboot=t lpj=4000000 tsc_early_khz=2000000 rdinit=/init";
    std::vector<std::string> argv = {
        kQemu, "-M", "microvm,acpi=on", "-accel", accel_arg(), "-cpu", "max", "-m", mem,
        "-smp", std::to_string(shape.cpus), "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", assets.kernel, "-initrd", assets.initramfs, "-append", cmdline,
        "-serial", "file:" + run_dir + "/console.log",
        "-global", "virtio-mmio.force-legacy=false",
        // virtiofs needs the guest's RAM shared with virtiofsd.
        "-object", "memory-backend-memfd,id=mem,size=" + mem + ",share=on", "-machine", "memory-backend=mem",
        "-device", "virtio-serial-device",
        "-chardev", "socket,id=agent,path=" + agent_socket,
        "-device", "virtserialport,chardev=agent,name=vitro.agent"};
    argv.insert(argv.end(), devices.begin(), devices.end());
    try {
        qemu_ = spawn(argv, run_dir + "/qemu.log");
    } catch (...) {
        for (pid_t& pid : virtiofsd_) kill_and_reap(pid);
        throw;
    }
}

Vmm::~Vmm() {
    kill_and_reap(qemu_);
    for (pid_t& pid : virtiofsd_) kill_and_reap(pid);
}

std::optional<int> Vmm::qemu_exited() {
    if (qemu_status_) return qemu_status_;
    int st;
    if (qemu_ > 0 && ::waitpid(qemu_, &st, WNOHANG) == qemu_) {
        qemu_status_ = st;
        qemu_ = -1;
    }
    return qemu_status_;
}

bool Vmm::wait_qemu(int ms) {
    for (int i = 0; i < ms / 10; ++i) {
        if (qemu_exited()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return qemu_exited().has_value();
}

std::string Vmm::diagnostics() const {
    std::string q = tail_of(run_dir_ + "/qemu.log", 600), c = tail_of(run_dir_ + "/console.log", 600);
    std::string out;
    if (!q.empty()) out += "qemu: " + q;
    if (!c.empty()) out += (out.empty() ? "" : "; ") + std::string("guest console: ") + c;
    for (auto& ch : out)
        if (ch == '\n') ch = ' ';
    return out;
}

}  // namespace vitro::vm
