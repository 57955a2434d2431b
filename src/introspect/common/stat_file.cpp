#include "introspect/common/stat_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>

namespace vitro::introspect {

StatFile::StatFile(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}

bool StatFile::read(std::string& buf) const {
    if (!fd_) return false;
    if (buf.capacity() < 4096) buf.reserve(4096);
    buf.resize(buf.capacity());
    std::size_t len = 0;
    for (;;) {
        ssize_t n = ::pread(fd_.get(), buf.data() + len, buf.size() - len, static_cast<off_t>(len));
        if (n < 0) {
            if (errno == EINTR) continue;
            buf.clear();
            return false;
        }
        len += static_cast<std::size_t>(n);
        // A seq_file read fills the buffer unless the text ended: a short read
        // is the end (one syscall saved per file; syscalls are dear in a VM).
        if (len < buf.size()) break;
        buf.resize(buf.size() * 2);
    }
    buf.resize(len);
    return true;
}

namespace {
std::optional<uint64_t> parse_u64(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    uint64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr == s.data()) return std::nullopt;
    return v;
}
}  // namespace

std::optional<uint64_t> keyed(std::string_view text, std::string_view key) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view line = text.substr(pos, eol - pos);
        if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
            (line[key.size()] == ' ' || line[key.size()] == '\t'))
            return parse_u64(line.substr(key.size() + 1));
        pos = eol + 1;
    }
    return std::nullopt;
}

std::optional<uint64_t> first_number(std::string_view text) { return parse_u64(text); }

void fields(std::string_view line, std::string_view* out, std::size_t max, std::size_t& n) {
    n = 0;
    std::size_t i = 0;
    while (i < line.size() && n < max) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) out[n++] = line.substr(start, i - start);
    }
}

}  // namespace vitro::introspect
