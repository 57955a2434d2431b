#include "iobench/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>

#include "cgroups/cgroup.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace vitro::iobench {

namespace {

std::string sh_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::string command_line(const std::vector<std::string>& fio, const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : fio) s += (s.empty() ? "" : " ") + sh_quote(a);
    for (const auto& a : args) s += " " + sh_quote(a);
    return s;
}

// Where a VM container sees fio_dir().
constexpr const char* kVmFioDir = "/vitro-fio";

struct Child {
    pid_t pid = -1;
    UniqueFd in, out, err;
};

// Forks argv (its own process group: a terminal's Ctrl-C reaches the bench,
// which then stops the child itself) with pipes on stdin, stdout, stderr.
Child spawn(const std::vector<std::string>& argv) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) throw_errno("pipe2");
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork", argv[0]);
    if (pid == 0) {
        ::setpgid(0, 0);
        ::dup2(in[0], 0), ::dup2(out[1], 1), ::dup2(err[1], 2);
        ::execv(cargv[0], cargv.data());
        ::_exit(127);
    }
    ::close(in[0]), ::close(out[1]), ::close(err[1]);
    return {pid, UniqueFd(in[1]), UniqueFd(out[0]), UniqueFd(err[0])};
}

struct Collected {
    int status = 0;
    std::string out, err;
    bool stopped = false;
};

// Reads the child's output until it exits, or until *stop (the child still
// runs then: the caller ends it).
Collected collect(Child& c, const std::atomic<bool>* stop) {
    Collected r;
    c.in.reset();
    pollfd fds[2] = {{c.out.get(), POLLIN, 0}, {c.err.get(), POLLIN, 0}};
    int open = 2;
    char buf[65536];
    while (open > 0) {
        if (stop && stop->load()) {
            r.stopped = true;
            return r;
        }
        int n = ::poll(fds, 2, 100);
        if (n < 0 && errno != EINTR) throw_errno("poll");
        for (int i = 0; n > 0 && i < 2; ++i) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got > 0) (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(got));
            else if (got == 0 || errno != EINTR) fds[i].fd = -1, --open;
        }
    }
    while (::waitpid(c.pid, &r.status, 0) < 0 && errno == EINTR) {
    }
    c.pid = -1;
    return r;
}

void reap(Child& c, int timeout_ms) {
    if (c.pid < 0) return;
    for (int waited = 0;; waited += 50) {
        int st;
        pid_t got = ::waitpid(c.pid, &st, WNOHANG);
        if (got == c.pid || (got < 0 && errno != EINTR)) break;
        if (waited >= timeout_ms) {
            ::kill(-c.pid, SIGKILL);
            ::kill(c.pid, SIGKILL);
            ::waitpid(c.pid, &st, 0);
            break;
        }
        ::usleep(50000);
    }
    c.pid = -1;
}

std::string device_of(const std::string& dir) {
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0 || major(st.st_dev) == 0) return "";  // tmpfs, overlay: no block device
    return std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
}

std::string failure(const std::string& what, const Collected& r) {
    std::string how = WIFEXITED(r.status) ? "exited with status " + std::to_string(WEXITSTATUS(r.status))
                                          : "killed by signal " + std::to_string(WTERMSIG(r.status));
    std::string tail = r.err.size() > 600 ? r.err.substr(r.err.size() - 600) : r.err;
    return what + " " + how + (tail.empty() ? "" : ": " + trim(tail));
}

RunSample sample_from(const Collected& r, long ticks, double wall_s, const std::string& what) {
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) throw Error(EIO, failure(what, r));
    std::string fio_out;
    auto snaps = parse_snapshots(r.out, fio_out, ticks);
    if (!snaps.count("before") || !snaps.count("after")) throw Error(EIO, what + ": no counters in its output");
    RunSample s;
    s.fio = parse_fio_json(fio_out);
    s.before = snaps["before"];
    s.after = snaps["after"];
    s.wall_s = wall_s;
    return s;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Runner::Runner(const Plan& plan, Engine engine, std::string storage_root, const std::atomic<bool>* stop)
    : plan_(plan), engine_(std::move(engine)), stop_(stop), ticks_(::sysconf(_SC_CLK_TCK)) {
    work_ = storage_root + "/bench-io-" + std::to_string(::getpid());
    make_dirs(work_, 0700);
    volume_dir_ = plan.target_dir.empty() ? work_ + "/volume" : plan.target_dir;
    make_dirs(volume_dir_);
    switch (plan.target) {
    case TargetKind::Rootfs: host_dir_ = work_ + "/rootfs"; break;
    case TargetKind::Volume: host_dir_ = volume_dir_; break;
    case TargetKind::Tmpfs: {
        host_dir_ = work_ + "/tmpfs";
        make_dirs(host_dir_);
        std::string opts = "size=" + std::to_string(plan.size + (16u << 20));
        if (::mount("tmpfs", host_dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
            int e = errno;
            std::filesystem::remove_all(work_);
            throw_errno(e, "mount tmpfs", host_dir_);
        }
        tmpfs_mounted_ = true;
        break;
    }
    }
    make_dirs(host_dir_);
    device_ = device_of(host_dir_);
}

Runner::~Runner() {
    if (tmpfs_mounted_) ::umount2(host_dir_.c_str(), MNT_DETACH);
    std::error_code ec;
    // A directory the user named stays (only the run's file went, by the script).
    std::filesystem::remove_all(work_, ec);
}

std::string Runner::script(const Cell& cell, const std::string& file, const std::vector<std::string>& cgroup_files,
                           const std::vector<std::string>& fio) const {
    Job job{cell.workload, cell.bs, plan_.size, plan_.direct, file};
    std::string s = "rm -f " + sh_quote(file) + "; ";
    // The layout is synced so that its writeback does not land in the window.
    if (reads(cell.workload))
        s += command_line(fio, layout_args(job)) + " --end_fsync=1 >&2 || exit 90; ";
    s += snapshot_script("before", cgroup_files);
    s += command_line(fio, fio_args(job)) + "; rc=$?; ";
    s += snapshot_script("after", cgroup_files);
    return s + "rm -f " + sh_quote(file) + "; exit $rc";
}

const std::string& Runner::fio_dir() {
    if (!fio_dir_.empty()) return fio_dir_;
    std::string dir = work_ + "/fio";
    make_dirs(dir, 0755);
    for (const auto& f : plan_.fio_files)
        std::filesystem::copy_file(f, dir + "/" + std::filesystem::path(f).filename().string(), std::filesystem::copy_options::overwrite_existing);
    return fio_dir_ = dir;
}

std::optional<RunSample> Runner::run(const Cell& cell) {
    ++seq_;
    return cell.isolation == "host" ? run_host(cell) : run_container(cell);
}

std::optional<RunSample> Runner::run_host(const Cell& cell) {
    std::string id = "bench-io-" + std::to_string(::getpid()) + "-" + std::to_string(seq_);
    auto cg = cgroups::make_manager("/vitro-" + id, id);
    cg->create(std::nullopt);
    struct Destroy {
        cgroups::Manager& m;
        ~Destroy() {
            try {
                m.kill_all(SIGKILL);
                m.destroy();
            } catch (...) {
            }
        }
    } destroy{*cg};

    // The shell waits on its stdin for the script: it is in the cgroup by then.
    Child c = spawn({"/bin/sh", "-c", "exec /bin/sh -c \"$(cat)\""});
    std::string file = host_dir_ + "/fio-" + id + ".dat";
    cg->add_process(c.pid);
    auto where = cgroups::CgroupMounts().of_process(c.pid);
    std::vector<std::string> files;
    if (where.v1.count("cpuacct")) {
        files.push_back(where.v1["cpuacct"] + "/cpuacct.usage");
        files.push_back(where.v1["cpuacct"] + "/cpuacct.stat");
    }
    if (where.v1.count("blkio")) files.push_back(where.v1["blkio"] + "/blkio.throttle.io_service_bytes_recursive");
    if (!where.v2.empty()) files.push_back(where.v2 + "/cpu.stat"), files.push_back(where.v2 + "/io.stat");
    auto t0 = std::chrono::steady_clock::now();
    write_all(c.in.get(), script(cell, file, files, {plan_.fio}), "the bench script");
    Collected r = collect(c, stop_);
    if (r.stopped) {
        cg->kill_all(SIGKILL);
        reap(c, 5000);
        ::unlink(file.c_str());
        return std::nullopt;
    }
    return sample_from(r, ticks_, seconds_since(t0), "fio on the host");
}

std::optional<RunSample> Runner::run_container(const Cell& cell) {
    std::string name = "vitro-bench-io-" + std::to_string(::getpid()) + "-" + std::to_string(seq_);
    std::vector<std::string> argv{engine_.vitro};
    argv.insert(argv.end(), engine_.globals.begin(), engine_.globals.end());
    if (cell.runtime != "vitro") argv.insert(argv.end(), {"--runtime", cell.runtime});
    argv.insert(argv.end(), {"run", "--rm", "--name", name, "--network", "none"});
    const bool vm = cell.isolation == "vm";
    std::vector<std::string> fio_cmd = {plan_.fio};
    if (vm) {
        argv.insert(argv.end(), {"--isolation", "vm", "-v", fio_dir() + ":" + kVmFioDir + ":ro"});
        const std::string dir = kVmFioDir;
        std::string loader;
        for (const auto& f : plan_.fio_files)
            if (std::filesystem::path(f).filename().string().rfind("ld-linux", 0) == 0) loader = dir + "/" + std::filesystem::path(f).filename().string();
        if (loader.empty()) throw Error(ENOENT, "fio's dynamic loader (ld-linux) is not among the files ldd named");
        fio_cmd = {loader, "--library-path", dir, dir + "/" + std::filesystem::path(plan_.fio).filename().string()};
        // A tmpfs target lives in the guest's RAM: room for it beside the guest's own.
        if (plan_.target == TargetKind::Tmpfs) argv.insert(argv.end(), {"-m", std::to_string((plan_.size >> 20) + 256) + "m"});
    } else {
        for (const auto& f : plan_.fio_files) argv.insert(argv.end(), {"-v", f + ":" + f + ":ro"});
    }
    std::string file;
    switch (plan_.target) {
    case TargetKind::Rootfs: file = "/fio-" + name + ".dat"; break;
    case TargetKind::Volume:
        argv.insert(argv.end(), {"-v", volume_dir_ + ":/bench"});
        file = "/bench/fio-" + name + ".dat";
        break;
    case TargetKind::Tmpfs:
        argv.insert(argv.end(), {"--tmpfs", "/bench:size=" + std::to_string(plan_.size + (16u << 20))});
        file = "/bench/fio-" + name + ".dat";
        break;
    }
    argv.insert(argv.end(), {engine_.image, "sh", "-c", script(cell, file, container_cgroup_files(), fio_cmd)});
    auto t0 = std::chrono::steady_clock::now();
    Child c = spawn(argv);
    Collected r = collect(c, stop_);
    if (r.stopped) {
        std::vector<std::string> rm{engine_.vitro};
        rm.insert(rm.end(), engine_.globals.begin(), engine_.globals.end());
        if (cell.runtime != "vitro") rm.insert(rm.end(), {"--runtime", cell.runtime});
        rm.insert(rm.end(), {"rm", "-f", name});
        // Whatever `rm` says, the attached run is reaped below.
        run_program(engine_.vitro, rm, {}, "", 60);
        reap(c, 5000);
        if (plan_.target == TargetKind::Volume) ::unlink((volume_dir_ + file.substr(6)).c_str());
        return std::nullopt;
    }
    return sample_from(r, ticks_, seconds_since(t0), "fio in " + cell.runtime + " container " + name);
}

}  // namespace vitro::iobench
