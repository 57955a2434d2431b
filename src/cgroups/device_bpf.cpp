// The cgroup v2 device controller: a BPF_PROG_TYPE_CGROUP_DEVICE program,
// assembled here as raw instructions (no libbpf, no clang at run time) and
// attached to the container's cgroup with the bpf() syscall.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "cgroups/detail.hpp"
#include "util/error.hpp"

namespace vitro::cgroups::detail {

namespace {

// Registers, as the program uses them.
constexpr uint8_t R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5;
constexpr uint8_t kType = R2, kAccess = R3, kMajor = R4, kMinor = R5;

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}
bpf_insn load_u32(uint8_t dst, int16_t ctx_off) { return insn(BPF_LDX | BPF_MEM | BPF_W, dst, R1, ctx_off, 0); }
bpf_insn alu_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
bpf_insn mov_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
// A conditional jump whose target ("the next rule") is patched in later.
bpf_insn jump_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_JMP | op | BPF_K, dst, 0, 0, imm); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

int32_t access_bits(const std::string& access) {
    if (access.empty()) return BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
    int32_t bits = 0;
    for (char c : access) {
        if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
        else if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
        else if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
        else throw Error("linux.resources.devices: access \"" + access + "\" is not made of r, w, m");
    }
    return bits;
}

int32_t device_number(const std::optional<int64_t>& v, const char* what) {
    if (*v > INT32_MAX)
        throw Error(std::string("linux.resources.devices: ") + what + " " + std::to_string(*v) + " is too large");
    return static_cast<int32_t>(*v);
}

// One rule: tests that fall through when they match, then the verdict.
// Returns the block; `match_all` says no request can get past it.
std::vector<bpf_insn> rule_block(const oci::DeviceRule& r, bool& match_all) {
    std::vector<bpf_insn> b;
    if (r.type == "b" || r.type == "c")
        b.push_back(jump_imm(BPF_JNE, kType, r.type == "b" ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    else if (r.type != "a")
        throw Error("linux.resources.devices: type \"" + r.type + "\" is not one of a, b, c");
    constexpr int32_t kAll = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
    int32_t acc = access_bits(r.access);
    if (acc != kAll) {
        // An allow rule covers a request only if it grants every bit asked for;
        // a deny rule hits a request that asks for any bit it names (v1 semantics).
        b.push_back(mov_reg(R1, kAccess));
        if (r.allow) {
            b.push_back(alu_imm(BPF_AND, R1, kAll & ~acc));
            b.push_back(jump_imm(BPF_JNE, R1, 0));
        } else {
            b.push_back(alu_imm(BPF_AND, R1, acc));
            b.push_back(jump_imm(BPF_JEQ, R1, 0));
        }
    }
    if (r.major && *r.major >= 0) b.push_back(jump_imm(BPF_JNE, kMajor, device_number(r.major, "major")));
    if (r.minor && *r.minor >= 0) b.push_back(jump_imm(BPF_JNE, kMinor, device_number(r.minor, "minor")));
    match_all = b.empty();
    b.push_back(alu_imm(BPF_MOV, R0, r.allow ? 1 : 0));
    b.push_back(exit_insn());
    // Every conditional jump skips to the end of the block: the next rule.
    for (size_t i = 0; i < b.size(); ++i)
        if (BPF_CLASS(b[i].code) == BPF_JMP && BPF_OP(b[i].code) != BPF_EXIT)
            b[i].off = static_cast<int16_t>(b.size() - i - 1);
    return b;
}

long sys_bpf(int cmd, bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

uint64_t ptr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

UniqueFd load_program(const std::vector<bpf_insn>& prog) {
    static const char license[] = "GPL";
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = ptr(prog.data());
    attr.insn_cnt = static_cast<uint32_t>(prog.size());
    attr.license = ptr(license);
    int fd = static_cast<int>(sys_bpf(BPF_PROG_LOAD, attr));
    if (fd >= 0) return UniqueFd(fd);
    int err = errno;
    // Load again with the verifier's log, for a message worth reading.
    std::string log(65536, '\0');
    attr.log_level = 1;
    attr.log_buf = ptr(log.data());
    attr.log_size = static_cast<uint32_t>(log.size());
    fd = static_cast<int>(sys_bpf(BPF_PROG_LOAD, attr));
    if (fd >= 0) return UniqueFd(fd);
    log.resize(strlen(log.c_str()));
    throw Error(err, "load device cgroup BPF program: " + errno_name(err) + (log.empty() ? "" : "\n" + log));
}

struct Attached {
    uint32_t flags = 0;
    std::vector<uint32_t> ids;
};

Attached query_attached(int cgroup_fd, const std::string& dir) {
    Attached a;
    a.ids.resize(64);
    bpf_attr attr{};
    attr.query.target_fd = static_cast<uint32_t>(cgroup_fd);
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = ptr(a.ids.data());
    attr.query.prog_cnt = static_cast<uint32_t>(a.ids.size());
    if (sys_bpf(BPF_PROG_QUERY, attr) < 0) throw_errno("query device programs of", dir);
    a.flags = attr.query.attach_flags;
    a.ids.resize(attr.query.prog_cnt);
    return a;
}

void attach(int cgroup_fd, int prog_fd, uint32_t flags, const std::string& dir) {
    bpf_attr attr{};
    attr.target_fd = static_cast<uint32_t>(cgroup_fd);
    attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = flags;
    if (sys_bpf(BPF_PROG_ATTACH, attr) < 0) throw_errno("attach device BPF program to", dir);
}

void detach(int cgroup_fd, uint32_t prog_id, const std::string& dir) {
    bpf_attr attr{};
    attr.prog_id = prog_id;
    int fd = static_cast<int>(sys_bpf(BPF_PROG_GET_FD_BY_ID, attr));
    if (fd < 0) {
        if (errno == ENOENT) return;  // already gone
        throw_errno("get BPF program " + std::to_string(prog_id) + " of", dir);
    }
    UniqueFd prog(fd);
    attr = {};
    attr.target_fd = static_cast<uint32_t>(cgroup_fd);
    attr.attach_bpf_fd = static_cast<uint32_t>(prog.get());
    attr.attach_type = BPF_CGROUP_DEVICE;
    if (sys_bpf(BPF_PROG_DETACH, attr) < 0 && errno != ENOENT)
        throw_errno("detach device BPF program " + std::to_string(prog_id) + " from", dir);
}

}  // namespace

std::vector<bpf_insn> build_device_program(const std::vector<oci::DeviceRule>& rules) {
    std::vector<bpf_insn> prog = {
        load_u32(kType, 0), alu_imm(BPF_AND, kType, 0xffff),  // access_type low half: device type
        load_u32(kAccess, 0), alu_imm(BPF_RSH, kAccess, 16),  // high half: access bits
        load_u32(kMajor, 4),  load_u32(kMinor, 8),
    };
    // The last rule that matches decides: test the rules from the end.
    for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
        bool match_all = false;
        auto block = rule_block(*it, match_all);
        prog.insert(prog.end(), block.begin(), block.end());
        if (match_all) return prog;  // earlier rules are unreachable (the verifier refuses dead code)
    }
    // No rule matched: a v1 cgroup starts out allowing every device.
    prog.push_back(alu_imm(BPF_MOV, R0, 1));
    prog.push_back(exit_insn());
    return prog;
}

void apply_device_program(const std::string& dir, const std::vector<oci::DeviceRule>& rules) {
    UniqueFd prog = load_program(build_device_program(rules));
    UniqueFd cg(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg) throw_errno("open", dir);
    Attached old = query_attached(cg.get(), dir);
    if (!old.ids.empty() && !(old.flags & BPF_F_ALLOW_MULTI)) {
        // A single program attached without ALLOW_MULTI: attaching with the
        // same flags replaces it atomically.
        attach(cg.get(), prog.get(), old.flags, dir);
        return;
    }
    // Attach the new program before detaching the old ones, so that there is
    // never a moment without a device filter.
    attach(cg.get(), prog.get(), BPF_F_ALLOW_MULTI, dir);
    for (uint32_t id : old.ids) detach(cg.get(), id, dir);
}

}  // namespace vitro::cgroups::detail
