#include "vm/assets.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>
#include <vector>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::vm {

namespace {

const char* const kHowToGet = " (scripts/vm-kernel.sh installs Debian's cloud kernel there; $VITRO_VM_DIR names another directory)";

std::string identity(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) throw_errno("stat", path);
    return path + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec);
}

struct ArchiveDeleter {
    void operator()(archive* a) const { archive_write_free(a); }
};

// The initramfs: /init (the agent), /modules/*.ko and their order, written
// beside `out` and renamed into place (a reader never sees half of it).
void write_initramfs(const std::string& out, const std::string& agent, const std::string& mod_dir,
                     const std::vector<std::string>& modules) {
    const std::string tmp = out + ".tmp." + std::to_string(::getpid());
    std::unique_ptr<archive, ArchiveDeleter> a(archive_write_new());
    if (!a) throw Error(ENOMEM, "archive_write_new");
    auto check_ar = [&](int rc, const std::string& what) {
        if (rc != ARCHIVE_OK) throw Error(EIO, "initramfs " + tmp + ": " + what + ": " + archive_error_string(a.get()));
    };
    check_ar(archive_write_set_format_cpio_newc(a.get()), "format");
    check_ar(archive_write_open_filename(a.get(), tmp.c_str()), "open");
    auto add = [&](const std::string& name, mode_t mode, const std::string& data) {
        std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), archive_entry_free);
        archive_entry_set_pathname(e.get(), name.c_str());
        archive_entry_set_filetype(e.get(), mode & S_IFMT);
        archive_entry_set_perm(e.get(), mode & 07777);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
        check_ar(archive_write_header(a.get(), e.get()), name);
        if (!data.empty() && archive_write_data(a.get(), data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
            check_ar(ARCHIVE_FATAL, name);
    };
    try {
        for (const char* d : {"dev", "proc", "sys", "rootfs", "modules"}) add(d, S_IFDIR | 0755, "");
        add("init", S_IFREG | 0755, read_file(agent));
        std::string order;
        for (const auto& m : modules) {
            add("modules/" + m + ".ko", S_IFREG | 0644, read_file(mod_dir + "/" + m + ".ko"));
            order += m + "\n";
        }
        add("modules/order", S_IFREG | 0644, order);
        check_ar(archive_write_close(a.get()), "close");
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    if (::rename(tmp.c_str(), out.c_str()) < 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw_errno(e, "rename", tmp);
    }
}

}  // namespace

std::string default_kernel_dir() {
    const char* d = std::getenv("VITRO_VM_DIR");
    return d && *d ? d : "/usr/lib/vitro/vm";
}

GuestAssets prepare_assets(const std::string& kernel_dir, const std::string& agent, const std::string& cache_dir) {
    GuestAssets g;
    g.kernel = kernel_dir + "/vmlinux";
    char head[4] = {};
    UniqueFd k(::open(g.kernel.c_str(), O_RDONLY | O_CLOEXEC));
    if (!k) throw Error(errno, "the microVM kernel " + g.kernel + " cannot be opened" + kHowToGet);
    if (::read(k.get(), head, sizeof head) != sizeof head || std::string_view(head, 4) != "\x7f" "ELF")
        throw Error(ENOEXEC, "the microVM kernel " + g.kernel + " is not an uncompressed ELF vmlinux" + kHowToGet);
    std::vector<std::string> modules;
    try {
        std::istringstream order(read_file(kernel_dir + "/modules/order"));
        for (std::string m; std::getline(order, m);)
            if (!m.empty()) modules.push_back(m);
        g.release = trim(read_file(kernel_dir + "/release"));
    } catch (const Error& e) {
        throw Error(e.code(), "the microVM kernel's modules in " + kernel_dir + ": " + e.what() + kHowToGet);
    }
    if (::access(agent.c_str(), X_OK) != 0)
        throw_errno("the microVM agent (built beside vitro as vitro-agent)", agent);
    std::string key = identity(agent) + "|" + identity(g.kernel);
    for (const auto& m : modules) key += "|" + identity(kernel_dir + "/modules/" + m + ".ko");
    std::ostringstream name;
    name << cache_dir << "/initramfs-" << std::hex << std::hash<std::string>{}(key) << ".cpio";
    g.initramfs = name.str();
    if (::access(g.initramfs.c_str(), R_OK) != 0) {
        make_dirs(cache_dir, 0700);
        write_initramfs(g.initramfs, agent, kernel_dir + "/modules", modules);
    }
    return g;
}

}  // namespace vitro::vm
