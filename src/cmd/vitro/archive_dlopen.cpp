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

void* library() {
    static void* const lib = ::dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        throw vitro::Error(ENOENT, std::string("image and archive commands need libarchive (package libarchive13): ") +
                                       ::dlerror());
    return lib;
}

template <typename Fn>
Fn resolve(const char* name) {
    void* p = ::dlsym(library(), name);
    if (!p) throw vitro::Error(ENOENT, std::string("libarchive.so.13 lacks ") + name);
    return reinterpret_cast<Fn>(p);
}

}  // namespace

extern "C" {

__LA_MODE_T archive_entry_filetype(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_filetype)>("archive_entry_filetype");
    return fn(a0);
}

void archive_entry_free(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_free)>("archive_entry_free");
    fn(a0);
}

la_int64_t archive_entry_gid(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_gid)>("archive_entry_gid");
    return fn(a0);
}

const char * archive_entry_hardlink(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_hardlink)>("archive_entry_hardlink");
    return fn(a0);
}

time_t archive_entry_mtime(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_mtime)>("archive_entry_mtime");
    return fn(a0);
}

int archive_entry_mtime_is_set(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_mtime_is_set)>("archive_entry_mtime_is_set");
    return fn(a0);
}

long archive_entry_mtime_nsec(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_mtime_nsec)>("archive_entry_mtime_nsec");
    return fn(a0);
}

struct archive_entry * archive_entry_new(void) {
    static const auto fn = resolve<decltype(&::archive_entry_new)>("archive_entry_new");
    return fn();
}

const char * archive_entry_pathname(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_pathname)>("archive_entry_pathname");
    return fn(a0);
}

__LA_MODE_T archive_entry_perm(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_perm)>("archive_entry_perm");
    return fn(a0);
}

dev_t archive_entry_rdevmajor(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_rdevmajor)>("archive_entry_rdevmajor");
    return fn(a0);
}

dev_t archive_entry_rdevminor(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_rdevminor)>("archive_entry_rdevminor");
    return fn(a0);
}

void archive_entry_set_filetype(struct archive_entry * a0, unsigned int a1) {
    static const auto fn = resolve<decltype(&::archive_entry_set_filetype)>("archive_entry_set_filetype");
    fn(a0, a1);
}

void archive_entry_set_mtime(struct archive_entry * a0, time_t a1, long a2) {
    static const auto fn = resolve<decltype(&::archive_entry_set_mtime)>("archive_entry_set_mtime");
    fn(a0, a1, a2);
}

void archive_entry_set_pathname(struct archive_entry * a0, const char * a1) {
    static const auto fn = resolve<decltype(&::archive_entry_set_pathname)>("archive_entry_set_pathname");
    fn(a0, a1);
}

void archive_entry_set_perm(struct archive_entry * a0, __LA_MODE_T a1) {
    static const auto fn = resolve<decltype(&::archive_entry_set_perm)>("archive_entry_set_perm");
    fn(a0, a1);
}

void archive_entry_set_size(struct archive_entry * a0, la_int64_t a1) {
    static const auto fn = resolve<decltype(&::archive_entry_set_size)>("archive_entry_set_size");
    fn(a0, a1);
}

la_int64_t archive_entry_size(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_size)>("archive_entry_size");
    return fn(a0);
}

int archive_entry_size_is_set(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_size_is_set)>("archive_entry_size_is_set");
    return fn(a0);
}

const char * archive_entry_symlink(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_symlink)>("archive_entry_symlink");
    return fn(a0);
}

la_int64_t archive_entry_uid(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_uid)>("archive_entry_uid");
    return fn(a0);
}

int archive_entry_xattr_next(struct archive_entry * a0, const char ** a1, const void ** a2, size_t * a3) {
    static const auto fn = resolve<decltype(&::archive_entry_xattr_next)>("archive_entry_xattr_next");
    return fn(a0, a1, a2, a3);
}

int archive_entry_xattr_reset(struct archive_entry * a0) {
    static const auto fn = resolve<decltype(&::archive_entry_xattr_reset)>("archive_entry_xattr_reset");
    return fn(a0);
}

const char * archive_error_string(struct archive * a0) {
    static const auto fn = resolve<decltype(&::archive_error_string)>("archive_error_string");
    return fn(a0);
}

la_ssize_t archive_read_data(struct archive * a0, void * a1, size_t a2) {
    static const auto fn = resolve<decltype(&::archive_read_data)>("archive_read_data");
    return fn(a0, a1, a2);
}

int archive_read_data_block(struct archive * a0, const void ** a1, size_t * a2, la_int64_t * a3) {
    static const auto fn = resolve<decltype(&::archive_read_data_block)>("archive_read_data_block");
    return fn(a0, a1, a2, a3);
}

int archive_read_free(struct archive * a0) {
    static const auto fn = resolve<decltype(&::archive_read_free)>("archive_read_free");
    return fn(a0);
}

struct archive * archive_read_new(void) {
    static const auto fn = resolve<decltype(&::archive_read_new)>("archive_read_new");
    return fn();
}

int archive_read_next_header(struct archive * a0, struct archive_entry ** a1) {
    static const auto fn = resolve<decltype(&::archive_read_next_header)>("archive_read_next_header");
    return fn(a0, a1);
}

int archive_read_open(struct archive * a0, void * a1, archive_open_callback * a2, archive_read_callback * a3, archive_close_callback * a4) {
    static const auto fn = resolve<decltype(&::archive_read_open)>("archive_read_open");
    return fn(a0, a1, a2, a3, a4);
}

int archive_read_open_fd(struct archive * a0, int a1, size_t a2) {
    static const auto fn = resolve<decltype(&::archive_read_open_fd)>("archive_read_open_fd");
    return fn(a0, a1, a2);
}

int archive_read_open_filename(struct archive * a0, const char * a1, size_t a2) {
    static const auto fn = resolve<decltype(&::archive_read_open_filename)>("archive_read_open_filename");
    return fn(a0, a1, a2);
}

int archive_read_open_memory(struct archive * a0, const void * a1, size_t a2) {
    static const auto fn = resolve<decltype(&::archive_read_open_memory)>("archive_read_open_memory");
    return fn(a0, a1, a2);
}

int archive_read_support_filter_all(struct archive * a0) {
    static const auto fn = resolve<decltype(&::archive_read_support_filter_all)>("archive_read_support_filter_all");
    return fn(a0);
}

int archive_read_support_format_raw(struct archive * a0) {
    static const auto fn = resolve<decltype(&::archive_read_support_format_raw)>("archive_read_support_format_raw");
    return fn(a0);
}

int archive_read_support_format_tar(struct archive * a0) {
    static const auto fn = resolve<decltype(&::archive_read_support_format_tar)>("archive_read_support_format_tar");
    return fn(a0);
}

int archive_write_close(struct archive * a0) {
    static const auto fn = resolve<decltype(&::archive_write_close)>("archive_write_close");
    return fn(a0);
}

la_ssize_t archive_write_data(struct archive * a0, const void * a1, size_t a2) {
    static const auto fn = resolve<decltype(&::archive_write_data)>("archive_write_data");
    return fn(a0, a1, a2);
}

int archive_write_free(struct archive * a0) {
    static const auto fn = resolve<decltype(&::archive_write_free)>("archive_write_free");
    return fn(a0);
}

int archive_write_header(struct archive * a0, struct archive_entry * a1) {
    static const auto fn = resolve<decltype(&::archive_write_header)>("archive_write_header");
    return fn(a0, a1);
}

struct archive * archive_write_new(void) {
    static const auto fn = resolve<decltype(&::archive_write_new)>("archive_write_new");
    return fn();
}

int archive_write_open(struct archive * a0, void * a1, archive_open_callback * a2, archive_write_callback * a3, archive_close_callback * a4) {
    static const auto fn = resolve<decltype(&::archive_write_open)>("archive_write_open");
    return fn(a0, a1, a2, a3, a4);
}

int archive_write_open_filename(struct archive * a0, const char * a1) {
    static const auto fn = resolve<decltype(&::archive_write_open_filename)>("archive_write_open_filename");
    return fn(a0, a1);
}

int archive_write_set_format_pax_restricted(struct archive * a0) {
    static const auto fn = resolve<decltype(&::archive_write_set_format_pax_restricted)>("archive_write_set_format_pax_restricted");
    return fn(a0);
}

int archive_write_set_format_ustar(struct archive * a0) {
    static const auto fn = resolve<decltype(&::archive_write_set_format_ustar)>("archive_write_set_format_ustar");
    return fn(a0);
}

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
