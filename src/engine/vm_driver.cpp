#include "engine/vm_driver.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cgroups/cgroup.hpp"
#include "engine/spec_builder.hpp"
#include "linux/procfs.hpp"
#include "oci/spec.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "vm/shim.hpp"

namespace vitro::engine {

namespace {

namespace fs = std::filesystem;

// The VM's shape from the container's limits: --memory is the guest's RAM,
// --cpus rounded up its vCPUs. `res` becomes what the cgroup holding the
// VMM enforces: the guest's RAM plus the VMM's overhead, the CPU quota as given.
vm::VmShape shape_of(oci::Resources& res) {
    vm::VmShape shape;
    // The container's device rules are for its processes, not the VMM's
    // (QEMU and virtiofsd open /dev/null, /dev/kvm, /dev/urandom ...).
    res.devices.clear();
    if (res.memory && res.memory->limit && *res.memory->limit > 0) {
        const int64_t mib = *res.memory->limit >> 20;
        if (mib < vm::kMinMemoryMib)
            throw Error(EINVAL, "a memory limit of " + std::to_string(mib) + " MiB is too small for a VM: at least " +
                                    std::to_string(vm::kMinMemoryMib) + " MiB");
        shape.memory_mib = static_cast<int>(mib);
        res.memory->limit = (mib + vm::kVmmOverheadMib) << 20;
    }
    if (res.cpu && res.cpu->quota && *res.cpu->quota > 0) {
        const int64_t period = static_cast<int64_t>(res.cpu->period.value_or(100000));
        shape.cpus = static_cast<int>((*res.cpu->quota + period - 1) / period);
    }
    return shape;
}

class VmDriver final : public RuntimeDriver {
public:
    VmDriver(std::string runroot, std::string root, std::string agent)
        : runroot_(std::move(runroot)), root_(std::move(root)), agent_(std::move(agent)) {}

    StartedProcess create_and_start(const std::string& id, const std::string& bundle) override {
        const nlohmann::json spec = nlohmann::json::parse(read_file(bundle + "/config.json"));
        if (spec.value("process", nlohmann::json::object()).value("terminal", false))
            throw Error(ENOTSUP, "a terminal (-t) is not supported with --isolation vm yet");
        vm::ShimRequest req;
        req.name = id.substr(0, 12);
        std::string root_path = spec.at("root").value("path", "rootfs");
        req.rootfs = root_path.front() == '/' ? root_path : bundle + "/" + root_path;
        req.process = vm::process_of_spec(spec);
        req.volumes = vm::volumes_of_spec(spec, bundle, req.process);
        req.assets = vm::prepare_assets(vm::default_kernel_dir(), agent_, root_ + "/vm");
        req.run_dir = run_dir(id);
        remove(id);  // what an interrupted start left
        make_dirs(req.run_dir, 0700);
        // The VMM and virtiofsd live in the container's cgroup: its limits
        // bound them, and the exporter reports them as the container.
        const nlohmann::json& linux_spec = spec.value("linux", nlohmann::json::object());
        oci::Resources res = linux_spec.contains("resources") ? oci::parse_resources(linux_spec["resources"])
                                                              : oci::Resources{};
        req.shape = shape_of(res);
        auto cgroup = cgroups::make_manager(linux_spec.value("cgroupsPath", ""), id);
        try {
            cgroup->create(res);
            write_file_atomic(req.run_dir + "/cgroup.json", cgroup->to_json().dump(), 0600);
            write_file_atomic(req.run_dir + "/process.json", req.process.dump(), 0600);  // what exec starts from
        } catch (...) {
            cgroup->destroy();
            fs::remove_all(req.run_dir);
            throw;
        }
        static bool said = false;
        if (!said) log::info("microVM accelerator: " + vm::vm_accelerator());
        said = true;
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0) throw_errno("pipe");
        UniqueFd notify_r(p[0]), notify_w(p[1]);
        pid_t shim = ::fork();
        if (shim < 0) throw_errno("fork", "the microVM shim");
        if (shim == 0) {
            notify_r.reset();
            // The shim lives as long as the VM: none of the monitor's fds
            // (its database, its client's pipes, its log) lives on in it.
            const int nfd = notify_w.release();
            if (nfd > 3) ::close_range(3, static_cast<unsigned>(nfd) - 1, 0);
            ::close_range(static_cast<unsigned>(nfd) + 1, ~0U, 0);
            ::prctl(PR_SET_NAME, "vitro-vm-shim");
            try {
                cgroup->add_process(::getpid());
            } catch (const std::exception& e) {
                const std::string msg = std::string("E ") + e.what() + "\n";
                (void)!::write(nfd, msg.data(), msg.size());
                ::_exit(125);
            }
            vm::run_shim(req, nfd);
        }
        notify_w.reset();
        auto st = os::read_proc_stat(shim);
        write_file_atomic(req.run_dir + "/shim.pid",
                          std::to_string(shim) + " " + std::to_string(st ? st->start_time : 0), 0600);
        std::string line;
        char c;
        while (::read(notify_r.get(), &c, 1) == 1 && c != '\n') line += c;
        if (line != "R") {
            ::kill(shim, SIGKILL);
            while (::waitpid(shim, nullptr, 0) < 0 && errno == EINTR) {
            }
            cgroup->kill_all(SIGKILL);
            cgroup->destroy();
            fs::remove_all(req.run_dir);
            throw Error(EIO, line.rfind("E ", 0) == 0 ? line.substr(2) : "the microVM shim died while starting");
        }
        return {shim, {}};
    }

    void kill(const std::string& id, int signal, bool /*all: the VM holds only this container*/) override {
        pid_t pid = shim_pid(id);
        if (pid <= 0 || ::kill(pid, signal) < 0) throw Error(ESRCH, "container " + id.substr(0, 12) + " is not running");
    }

    void remove(const std::string& id) override {
        // Its VMM and virtiofsd die with it (PR_SET_PDEATHSIG).
        if (pid_t pid = shim_pid(id); pid > 0) {
            ::kill(pid, SIGKILL);
            for (int i = 0; i < 500 && shim_pid(id) > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        // Whatever outlived the shim (a VMM whose parent-death signal was
        // lost) goes with the cgroup.
        if (auto cgroup = cgroup_of(id)) {
            cgroup->kill_all(SIGKILL);
            cgroup->destroy();
        }
        std::error_code ec;
        fs::remove_all(run_dir(id), ec);
    }

    // The container's process with what `exec` changes, run by the agent in
    // the container's namespaces inside the guest.
    int exec(const std::string& id, const ExecRequest& req) override {
        if (req.tty) throw Error(ENOTSUP, "exec -t in a container with --isolation vm is not supported yet");
        if (shim_pid(id) <= 0) throw Error(ESRCH, "container " + id.substr(0, 12) + " is not running");
        nlohmann::json p = nlohmann::json::parse(read_file(run_dir(id) + "/process.json"));
        p["args"] = req.args;
        std::vector<std::string> env = p.value("env", std::vector<std::string>{});
        for (const auto& e : req.env) env_set(env, e);
        p["env"] = env;
        if (req.user) {
            p["uid"] = req.user->uid;
            p["gid"] = req.user->gid;
            p["gids"] = req.user->additional_gids;
        }
        if (!req.cwd.empty()) p["cwd"] = req.cwd;
        return vm::exec_in_vm(run_dir(id), p, req.detach);
    }

    std::vector<pid_t> pids(const std::string& id) override {
        if (auto cgroup = cgroup_of(id)) return cgroup->pids();
        std::vector<pid_t> out;
        pid_t pid = shim_pid(id);
        if (pid <= 0) return out;
        out.push_back(pid);
        std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
        for (pid_t c; children >> c;) out.push_back(c);
        return out;
    }

    // The whole VM stops: its VMM gets SIGSTOP (the guest's clock jumps on
    // SIGCONT, as after a QMP stop/cont).
    void pause(const std::string& id) override { signal_vmm(id, SIGSTOP); }
    void resume(const std::string& id) override { signal_vmm(id, SIGCONT); }

    // The cgroup's counters: the VMM's CPU and memory (the guest's RAM as
    // far as the guest has touched it, plus QEMU's and virtiofsd's own).
    nlohmann::json stats(const std::string& id) override {
        auto cgroup = shim_pid(id) > 0 ? cgroup_of(id) : nullptr;
        if (!cgroup) throw Error(ESRCH, "container " + id.substr(0, 12) + " is not running");
        return cgroup->stats().to_json();
    }

    std::string name() const override { return "vm (QEMU microvm)"; }

private:
    // Short: QEMU's agent socket lives in it (sun_path is 108 bytes).
    std::string run_dir(const std::string& id) const { return runroot_ + "/vm/" + id.substr(0, 16); }

    // The cgroup recorded at start, or null when there is none.
    std::unique_ptr<cgroups::Manager> cgroup_of(const std::string& id) const {
        std::string saved;
        try {
            saved = read_file(run_dir(id) + "/cgroup.json");
        } catch (const Error&) {
            return nullptr;  // never started, or removed already
        }
        return cgroups::load_manager(nlohmann::json::parse(saved));
    }

    // The shim's pid while that process lives (its start time checked: a
    // reused pid is not it), else 0.
    pid_t shim_pid(const std::string& id) const {
        std::ifstream f(run_dir(id) + "/shim.pid");
        pid_t pid = 0;
        uint64_t start = 0;
        if (!(f >> pid >> start) || pid <= 0) return 0;
        auto st = os::read_proc_stat(pid);
        if (!st || st->start_time != start || st->state == 'Z') return 0;
        return pid;
    }

    void signal_vmm(const std::string& id, int sig) {
        for (pid_t pid : pids(id)) {
            std::string comm;
            try {
                comm = read_file("/proc/" + std::to_string(pid) + "/comm");
            } catch (const Error&) {
                continue;
            }
            if (comm.rfind("qemu-system", 0) == 0 && ::kill(pid, sig) == 0) return;
        }
        throw Error(ESRCH, "container " + id.substr(0, 12) + ": its VM is not running");
    }

    std::string runroot_, root_, agent_;
};

}  // namespace

std::unique_ptr<RuntimeDriver> make_vm_driver(const std::string& runroot, const std::string& root,
                                              const std::string& agent) {
    return std::make_unique<VmDriver>(runroot, root, agent);
}

}  // namespace vitro::engine
