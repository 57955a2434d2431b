#include "bpf/object.hpp"

#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>

#include "util/fd.hpp"

namespace vitro::bpf {

namespace {

// libbpf's own messages, the last few KiB: for our error message.
thread_local std::string libbpf_log;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
    if (level == LIBBPF_DEBUG) return 0;
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
    libbpf_log += buf;
    if (libbpf_log.size() > 4096) libbpf_log.erase(0, libbpf_log.size() - 4096);
    return n;
}

std::string last_log_line() {
    std::string s = libbpf_log;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    auto pos = s.rfind('\n');
    return pos == std::string::npos ? s : s.substr(pos + 1);
}

}  // namespace

void ObjectCloser::operator()(bpf_object* o) const { bpf_object__close(o); }
void LinkDestroyer::operator()(bpf_link* l) const { bpf_link__destroy(l); }

std::string unavailable_reason() {
    if (!std::filesystem::exists("/sys/kernel/btf/vmlinux"))
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux): vitro's BPF programs cannot load";
    if (::geteuid() != 0) return "loading BPF programs needs root (CAP_BPF + CAP_PERFMON)";
    return "";
}

std::string iterator_unavailable_reason(const std::string& target) {
    if (std::string why = unavailable_reason(); !why.empty()) return why;
    // libbpf attaches an iterator program to the kernel's bpf_iter_<target>.
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return "the kernel's BTF cannot be read: " + std::string(std::strerror(errno));
    const bool has = btf__find_by_name_kind(vmlinux, ("bpf_iter_" + target).c_str(), BTF_KIND_FUNC) >= 0;
    btf__free(vmlinux);
    return has ? "" : "the kernel has no BPF " + target + " iterator (task: 5.8, cgroup: 6.1)";
}

Error error(int err, const std::string& what) {
    std::string msg = what + ": " + std::strerror(err);
    if (err == EPERM || err == EACCES) msg += " (loading BPF programs needs CAP_BPF and CAP_PERFMON, or root)";
    std::string log = last_log_line();
    if (!log.empty()) msg += " [libbpf: " + log + "]";
    return Error(err, msg);
}

Object open_embedded(const unsigned char* start, const unsigned char* end, const char* name) {
    libbpf_set_print(libbpf_print);
    libbpf_log.clear();
    if (std::string why = unavailable_reason(); !why.empty()) throw Error(EPERM, std::string(name) + ": " + why);
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
    bpf_object* o = bpf_object__open_mem(start, static_cast<size_t>(end - start), &opts);
    if (!o) throw error(errno, std::string("open the ") + name + " BPF object");
    return Object(o);
}

void set_insert(int fd, uint64_t key, const std::string& what) {
    const uint8_t one = 1;
    if (bpf_map_update_elem(fd, &key, &one, BPF_ANY) != 0) throw error(errno, what + " " + std::to_string(key));
}

void set_erase(int fd, uint64_t key) { bpf_map_delete_elem(fd, &key); }

size_t read_iterator(const Link& link, std::vector<char>& buf, const std::string& what) {
    UniqueFd it(bpf_iter_create(bpf_link__fd(link.get())));
    if (!it) throw error(errno, what);
    if (buf.empty()) buf.resize(64 * 1024);
    size_t have = 0;
    for (;;) {
        if (have == buf.size()) buf.resize(buf.size() * 2);
        ssize_t n = ::read(it.get(), buf.data() + have, buf.size() - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw error(errno, what);
        if (n == 0) return have;
        have += static_cast<size_t>(n);
    }
}

}  // namespace vitro::bpf
