// libarchive for the dynamic `vitro`, loaded on first use (dlopen) rather
// than linked: libarchive drags in libxml2 and ICU, whose loading and
// relocation cost more than the rest of vitro's start-up (about 6 ms of CPU
// per exec on the CI machine kind) at every command, twice per `vitro run`
// (the protected re-exec), though only image import, unpack, export and
// evidence bundles use it.
//
// The functions vitro calls are defined here under their own names and
// forward to the library's, so the callers stay plain libarchive code; the
// static binaries and the tests link libarchive itself instead of this file.
// A libarchive function used anywhere without a forwarder here fails vitro's
// link, never its run.
#include <dlfcn.h>

#include <archive.h>
#include <archive_entry.h>

#include <cstdarg>
#include <cstdio>
#include <string>

#include "util/error.hpp"

namespace {

// The handle, or why there is none: dlerror() says it once, and every later
// call must say it again.
struct Loaded {
    void* lib = nullptr;
    std::string error;
};

void* library() {
    static const Loaded loaded = [] {
        Loaded l;
        l.lib = ::dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
        if (!l.lib) l.error = ::dlerror();
        return l;
    }();
    if (!loaded.lib)
        throw vitro::Error(ENOENT, "image and archive commands need libarchive (package libarchive13): " + loaded.error);
    return loaded.lib;
}

template <typename Fn>
Fn resolve(const char* name) {
    void* p = ::dlsym(library(), name);
    if (!p) throw vitro::Error(ENOENT, std::string("libarchive.so.13 lacks ") + name);
    return reinterpret_cast<Fn>(p);
}

}  // namespace

// Defines `name` to call the library's function of that name. (A void
// function's `return fn(...)` is fine: the call's type is void too.)
#define FORWARD(ret, name, params, args)                                        \
    ret name params {                                                           \
        static const auto fn = resolve<decltype(&::name)>(#name);               \
        return fn args;                                                         \
    }

extern "C" {

FORWARD(__LA_MODE_T, archive_entry_filetype, (struct archive_entry* a0), (a0))
FORWARD(void, archive_entry_free, (struct archive_entry* a0), (a0))
FORWARD(la_int64_t, archive_entry_gid, (struct archive_entry* a0), (a0))
FORWARD(const char*, archive_entry_hardlink, (struct archive_entry* a0), (a0))
FORWARD(time_t, archive_entry_mtime, (struct archive_entry* a0), (a0))
FORWARD(int, archive_entry_mtime_is_set, (struct archive_entry* a0), (a0))
FORWARD(long, archive_entry_mtime_nsec, (struct archive_entry* a0), (a0))
FORWARD(struct archive_entry*, archive_entry_new, (void), ())
FORWARD(const char*, archive_entry_pathname, (struct archive_entry* a0), (a0))
FORWARD(__LA_MODE_T, archive_entry_perm, (struct archive_entry* a0), (a0))
FORWARD(dev_t, archive_entry_rdevmajor, (struct archive_entry* a0), (a0))
FORWARD(dev_t, archive_entry_rdevminor, (struct archive_entry* a0), (a0))
FORWARD(void, archive_entry_set_filetype, (struct archive_entry* a0, unsigned int a1), (a0, a1))
FORWARD(void, archive_entry_set_gid, (struct archive_entry* a0, la_int64_t a1), (a0, a1))
FORWARD(void, archive_entry_set_hardlink, (struct archive_entry* a0, const char* a1), (a0, a1))
FORWARD(void, archive_entry_set_mtime, (struct archive_entry* a0, time_t a1, long a2), (a0, a1, a2))
FORWARD(void, archive_entry_set_pathname, (struct archive_entry* a0, const char* a1), (a0, a1))
FORWARD(void, archive_entry_set_perm, (struct archive_entry* a0, __LA_MODE_T a1), (a0, a1))
FORWARD(void, archive_entry_set_rdevmajor, (struct archive_entry* a0, dev_t a1), (a0, a1))
FORWARD(void, archive_entry_set_rdevminor, (struct archive_entry* a0, dev_t a1), (a0, a1))
FORWARD(void, archive_entry_set_size, (struct archive_entry* a0, la_int64_t a1), (a0, a1))
FORWARD(void, archive_entry_set_symlink, (struct archive_entry* a0, const char* a1), (a0, a1))
FORWARD(void, archive_entry_set_uid, (struct archive_entry* a0, la_int64_t a1), (a0, a1))
FORWARD(la_int64_t, archive_entry_size, (struct archive_entry* a0), (a0))
FORWARD(int, archive_entry_size_is_set, (struct archive_entry* a0), (a0))
FORWARD(const char*, archive_entry_symlink, (struct archive_entry* a0), (a0))
FORWARD(la_int64_t, archive_entry_uid, (struct archive_entry* a0), (a0))
FORWARD(int, archive_entry_xattr_next, (struct archive_entry* a0, const char** a1, const void** a2, size_t* a3), (a0, a1, a2, a3))
FORWARD(int, archive_entry_xattr_reset, (struct archive_entry* a0), (a0))
FORWARD(int, archive_errno, (struct archive* a0), (a0))
FORWARD(const char*, archive_error_string, (struct archive* a0), (a0))
FORWARD(la_ssize_t, archive_read_data, (struct archive* a0, void* a1, size_t a2), (a0, a1, a2))
FORWARD(int, archive_read_data_block, (struct archive* a0, const void** a1, size_t* a2, la_int64_t* a3), (a0, a1, a2, a3))
FORWARD(int, archive_read_free, (struct archive* a0), (a0))
FORWARD(struct archive*, archive_read_new, (void), ())
FORWARD(int, archive_read_next_header, (struct archive* a0, struct archive_entry** a1), (a0, a1))
FORWARD(int, archive_read_open, (struct archive* a0, void* a1, archive_open_callback* a2, archive_read_callback* a3, archive_close_callback* a4), (a0, a1, a2, a3, a4))
FORWARD(int, archive_read_open_fd, (struct archive* a0, int a1, size_t a2), (a0, a1, a2))
FORWARD(int, archive_read_open_filename, (struct archive* a0, const char* a1, size_t a2), (a0, a1, a2))
FORWARD(int, archive_read_open_memory, (struct archive* a0, const void* a1, size_t a2), (a0, a1, a2))
FORWARD(int, archive_read_support_filter_all, (struct archive* a0), (a0))
FORWARD(int, archive_read_support_format_empty, (struct archive* a0), (a0))
FORWARD(int, archive_read_support_format_raw, (struct archive* a0), (a0))
FORWARD(int, archive_read_support_format_tar, (struct archive* a0), (a0))
FORWARD(int, archive_write_close, (struct archive* a0), (a0))
FORWARD(la_ssize_t, archive_write_data, (struct archive* a0, const void* a1, size_t a2), (a0, a1, a2))
FORWARD(int, archive_write_free, (struct archive* a0), (a0))
FORWARD(int, archive_write_header, (struct archive* a0, struct archive_entry* a1), (a0, a1))
FORWARD(struct archive*, archive_write_new, (void), ())
FORWARD(int, archive_write_open, (struct archive* a0, void* a1, archive_open_callback* a2, archive_write_callback* a3, archive_close_callback* a4), (a0, a1, a2, a3, a4))
FORWARD(int, archive_write_open_fd, (struct archive* a0, int a1), (a0, a1))
FORWARD(int, archive_write_open_filename, (struct archive* a0, const char* a1), (a0, a1))
FORWARD(int, archive_write_set_format_cpio_newc, (struct archive* a0), (a0))
FORWARD(int, archive_write_set_format_pax_restricted, (struct archive* a0), (a0))
FORWARD(int, archive_write_set_format_ustar, (struct archive* a0), (a0))
// Variadic: formatted here, handed over as one "%s" argument.
void archive_set_error(struct archive* a, int err, const char* fmt, ...) {
    static const auto fn = resolve<decltype(&::archive_set_error)>("archive_set_error");
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(a, err, "%s", msg);
}

}  // extern "C"

#undef FORWARD
