// What vitro's BPF users share (netlat's tracer, the exporter's cgroup walk):
// an object embedded in the binary opened through libbpf, libbpf's messages
// kept for our errors rather than printed over the user's output, and RAII
// for objects and links (fd-based, never pinned: they go with the process).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "util/error.hpp"

struct bpf_object;
struct bpf_link;

namespace vitro::bpf {

struct ObjectCloser {
    void operator()(bpf_object* o) const;
};
struct LinkDestroyer {
    void operator()(bpf_link* l) const;
};
using Object = std::unique_ptr<bpf_object, ObjectCloser>;
using Link = std::unique_ptr<bpf_link, LinkDestroyer>;

// Why BPF programs cannot load here ("" when they can, as far as can be told
// without loading one): no kernel BTF, not root.
std::string unavailable_reason();

// Opens (does not load) the object between `start` and `end`; `name` names
// it in libbpf and in errors. Throws Error, with the reason BPF is
// unavailable when it is.
Object open_embedded(const unsigned char* start, const unsigned char* end, const char* name);

// One whole walk of the iterator `link` is attached to, into `buf` (grown
// as needed, reused between walks): the bytes it wrote. Throws on a
// failure, naming `what`.
size_t read_iterator(const Link& link, std::vector<char>& buf, const std::string& what);

// The Error for a failed libbpf call: `what`, errno's text, a hint at the
// privileges on EPERM/EACCES, and libbpf's last message.
Error error(int err, const std::string& what);

}  // namespace vitro::bpf
