// Helpers for the image/ tests: a temp dir that removes itself (with
// image::remove_tree, as the store does), and tar archives built in memory
// with libarchive's writer.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "image/fsutil.hpp"
#include "util/error.hpp"
#include "testutil.hpp"

namespace image_test {

namespace fs = std::filesystem;

struct ImageTempDir {
    std::string path;
    ImageTempDir() {
        char tmpl[] = "/tmp/vitro-image-unit-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~ImageTempDir() {
        try {
            vitro::image::remove_tree(path);
        } catch (...) {
        }
    }
};

using vitro::test::error_of;

struct Entry {
    std::string path;
    mode_t type = AE_IFREG;
    std::string data;
    mode_t mode = 0644;
    std::string link;      // symlink target
    std::string hardlink;  // hardlink target
    unsigned major = 0, minor = 0;
    int uid = 0, gid = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;
    int64_t sparse_size = -1;  // >= 0: a sparse file of this size with `data` at its end
};

enum class Compression { none, gzip, zstd };

inline la_ssize_t append_cb(archive*, void* client, const void* buf, size_t n) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
}

inline std::string make_tar(const std::vector<Entry>& entries, Compression c = Compression::none) {
    std::string out;
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (c == Compression::gzip) archive_write_add_filter_gzip(a);
    if (c == Compression::zstd) archive_write_add_filter_zstd(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, &out, nullptr, append_cb, nullptr);
    for (auto& en : entries) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, en.path.c_str());
        archive_entry_set_perm(e, en.mode);
        archive_entry_set_uid(e, en.uid);
        archive_entry_set_gid(e, en.gid);
        archive_entry_set_mtime(e, 1700000000, 0);
        for (auto& [k, v] : en.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
        if (!en.hardlink.empty()) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, en.hardlink.c_str());
            archive_entry_set_size(e, 0);
        } else {
            archive_entry_set_filetype(e, en.type);
            if (en.type == AE_IFLNK) archive_entry_set_symlink(e, en.link.c_str());
            if (en.type == AE_IFCHR || en.type == AE_IFBLK) {
                archive_entry_set_rdevmajor(e, en.major);
                archive_entry_set_rdevminor(e, en.minor);
            }
            if (en.type == AE_IFREG) {
                if (en.sparse_size >= 0) {
                    archive_entry_set_size(e, en.sparse_size);
                    archive_entry_sparse_add_entry(e, en.sparse_size - static_cast<int64_t>(en.data.size()),
                                                   static_cast<int64_t>(en.data.size()));
                } else {
                    archive_entry_set_size(e, static_cast<int64_t>(en.data.size()));
                }
            }
        }
        if (archive_write_header(a, e) != ARCHIVE_OK) throw vitro::Error(archive_error_string(a));
        if (en.type == AE_IFREG && en.hardlink.empty() && !en.data.empty()) {
            if (en.sparse_size >= 0) {
                // The writer takes the whole file and skips the holes' bytes
                // (it never reads them): feed the hole from one zero buffer.
                static const std::string zeros(1 << 20, '\0');
                int64_t hole = en.sparse_size - static_cast<int64_t>(en.data.size());
                while (hole > 0) {
                    size_t n = static_cast<size_t>(std::min<int64_t>(hole, static_cast<int64_t>(zeros.size())));
                    archive_write_data(a, zeros.data(), n);
                    hole -= static_cast<int64_t>(n);
                }
                archive_write_data(a, en.data.data(), en.data.size());
            } else {
                archive_write_data(a, en.data.data(), en.data.size());
            }
        }
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
}

inline void put_file(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary);
    f << data;
}

inline std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// Every path under dir, relative, sorted (symlinks not followed).
inline std::vector<std::string> list_tree(const std::string& dir) {
    std::vector<std::string> out;
    if (!fs::exists(dir)) return out;
    for (auto& e : fs::recursive_directory_iterator(dir)) out.push_back(e.path().lexically_relative(dir).string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace image_test
