#include "engine/runtime_driver.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/spec_builder.hpp"
#include "runtime/internal.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/subprocess.hpp"

namespace vitro::engine {

namespace {

class InProcessRuntime final : public RuntimeDriver {
public:
    explicit InProcessRuntime(std::string root) { ctx_.root = std::move(root); }

    StartedProcess create_and_start(const std::string& id, const std::string& bundle) override {
        runtime::CreateOptions o;
        o.bundle = bundle;
        o.foreground = true;  // init stays our child; a terminal's master comes back to us
        runtime::CreateResult r = runtime::create_container(ctx_, id, o);
        try {
            runtime::start(ctx_, id);
        } catch (...) {
            remove(id);
            throw;
        }
        return {r.pid, std::move(r.console_master)};
    }
    void kill(const std::string& id, int signal, bool all) override { runtime::kill(ctx_, id, signal, all); }
    void remove(const std::string& id) override {
        try {
            runtime::remove(ctx_, id, true);
        } catch (const Error& e) {
            if (e.code() != ENOENT) throw;
        }
    }
    int exec(const std::string& id, const ExecRequest& req) override {
        runtime::ExecOptions o;
        o.process = runtime::exec_base_process(ctx_, id);
        o.process.args = req.args;
        for (const auto& e : req.env) env_set(o.process.env, e);
        if (req.user) o.process.user = *req.user;
        if (!req.cwd.empty()) o.process.cwd = req.cwd;
        o.process.terminal = req.tty;
        o.detach = req.detach;
        return runtime::exec(ctx_, id, o);
    }
    std::vector<pid_t> pids(const std::string& id) override { return runtime::pids(ctx_, id); }
    void pause(const std::string& id) override { runtime::pause(ctx_, id); }
    void resume(const std::string& id) override { runtime::resume(ctx_, id); }
    nlohmann::json stats(const std::string& id) override { return runtime::stats(ctx_, id); }
    std::string name() const override { return "vitro (built in)"; }

private:
    runtime::Context ctx_;
};

// A runc-compatible binary: create + start as child processes with our stdio.
class BinaryRuntime final : public RuntimeDriver {
public:
    BinaryRuntime(std::string path, std::string root) : path_(std::move(path)), root_(std::move(root)) {}

    StartedProcess create_and_start(const std::string& id, const std::string& bundle) override {
        std::string pid_file = bundle + "/runtime.pid";
        ::unlink(pid_file.c_str());
        run({"create", "--bundle", bundle, "--pid-file", pid_file, id}, true);
        try {
            run({"start", id}, false);
        } catch (...) {
            remove(id);
            throw;
        }
        StartedProcess p;
        p.pid = std::atoi(read_file(pid_file).c_str());
        return p;
    }
    void kill(const std::string& id, int signal, bool all) override {
        std::vector<std::string> a = {"kill"};
        if (all) a.push_back("--all");
        a.push_back(id);
        a.push_back(std::to_string(signal));
        run(a, false);
    }
    void remove(const std::string& id) override {
        try {
            run({"delete", "--force", id}, false);
        } catch (const Error&) {
            // Best effort, as runc's delete --force: a container the runtime no longer knows is already gone
        }
    }
    int exec(const std::string& id, const ExecRequest& req) override {
        nlohmann::json spec = nlohmann::json::parse(read_file(state(id).value("bundle", "") + "/config.json"));
        nlohmann::json p = spec.value("process", nlohmann::json::object());
        p["args"] = req.args;
        std::vector<std::string> env = p.value("env", std::vector<std::string>{});
        for (const auto& e : req.env) env_set(env, e);
        p["env"] = env;
        if (req.user) p["user"] = {{"uid", req.user->uid}, {"gid", req.user->gid}, {"additionalGids", req.user->additional_gids}};
        if (!req.cwd.empty()) p["cwd"] = req.cwd;
        p["terminal"] = req.tty;
        std::string file = root_ + "/exec-" + std::to_string(::getpid()) + ".json";
        write_file_atomic(file, p.dump(), 0600);
        std::vector<std::string> a = {"exec", "--process", file};
        if (req.detach) a.push_back("--detach");
        a.push_back(id);
        int status = spawn(a, true);
        ::unlink(file.c_str());
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    void pause(const std::string& id) override { run({"pause", id}, false); }
    void resume(const std::string& id) override { run({"resume", id}, false); }
    std::vector<pid_t> pids(const std::string& id) override {
        RunResult r = run_program_capture(path_, {path_, "--root", root_, "ps", "--format", "json", id}, environ_vec(), "", 30);
        std::vector<pid_t> out;
        if (r.status != 0) return out;
        for (const auto& p : nlohmann::json::parse(r.stdout_data, nullptr, false)) out.push_back(p.get<pid_t>());
        return out;
    }
    nlohmann::json stats(const std::string& id) override {
        RunResult r = run_program_capture(path_, {path_, "--root", root_, "events", "--stats", id}, environ_vec(), "", 30);
        if (r.status != 0) throw Error(path_ + " events --stats " + id + ": " + trim_tail(r.stderr_tail));
        return nlohmann::json::parse(r.stdout_data).value("data", nlohmann::json::object());
    }
    std::string name() const override { return path_; }

private:
    static std::vector<std::string> environ_vec() {
        std::vector<std::string> env;
        for (char** e = environ; *e; ++e) env.emplace_back(*e);
        return env;
    }
    nlohmann::json state(const std::string& id) {
        RunResult r = run_program_capture(path_, {path_, "--root", root_, "state", id}, environ_vec(), "", 30);
        if (r.status != 0) throw Error(path_ + " state " + id + ": " + trim_tail(r.stderr_tail));
        return nlohmann::json::parse(r.stdout_data);
    }
    static std::string trim_tail(std::string s) {
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        return s;
    }
    // fork + exec with our stdio; returns the wait status.
    int spawn(const std::vector<std::string>& args, bool keep_stdio) {
        std::vector<std::string> argv = {path_, "--root", root_};
        argv.insert(argv.end(), args.begin(), args.end());
        std::vector<char*> cargv;
        for (auto& a : argv) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        pid_t pid = ::fork();
        if (pid < 0) throw_errno("fork");
        if (pid == 0) {
            if (!keep_stdio) {
                int null = ::open("/dev/null", O_RDWR);
                ::dup2(null, 0);
                ::dup2(null, 1);
            }
            ::execv(path_.c_str(), cargv.data());
            std::fprintf(stderr, "exec %s: %s\n", path_.c_str(), std::strerror(errno));
            ::_exit(127);
        }
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0)
            if (errno != EINTR) throw_errno("wait", path_);
        return status;
    }
    void run(const std::vector<std::string>& args, bool keep_stdio) {
        int status = spawn(args, keep_stdio);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            throw Error(path_ + " " + args[0] + " failed (" + describe_status(RunResult{status, false, {}, {}, false}, std::nullopt) + ")");
    }

    std::string path_, root_;
};

}  // namespace

std::unique_ptr<RuntimeDriver> make_runtime_driver(const std::string& binary, const std::string& runroot) {
    if (binary.empty() || binary == "vitro") return std::make_unique<InProcessRuntime>(runroot + "/runtime");
    std::string found = find_program(binary);
    if (found.empty())
        throw Error(ENOENT, "--runtime " + binary + ": " +
                                (binary.find('/') != std::string::npos ? "not an executable file" : "not found in PATH"));
    std::string path = std::filesystem::absolute(found).string();
    std::string root = runroot + "/runtime-" + std::filesystem::path(path).filename().string();
    make_dirs(root, 0700);
    return std::make_unique<BinaryRuntime>(path, root);
}

int exec_failure_exit_code(const std::exception& e) {
    const auto* ve = dynamic_cast<const Error*>(&e);
    std::string_view what = e.what();
    if (!ve || what.find("exec: \"") == std::string_view::npos) return 0;
    return ve->code() == ENOENT ? 127 : 126;
}

}  // namespace vitro::engine
