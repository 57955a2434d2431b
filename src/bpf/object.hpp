// What vitro's BPF users share (netlat's tracer, the exporter's cgroup walk):
// an object embedded in the binary opened through libbpf, libbpf's messages
// kept for our errors rather than printed over the user's output, and RAII
// for objects and links (fd-based, never pinned: they go with the process).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
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

// Why an iterator program of kind `target` ("task", "cgroup") cannot load
// here: unavailable_reason(), or the kernel has no such iterator (task: 5.8,
// cgroup: 6.1). "" when it has: a program of vitro's that fails to load then
// is vitro's own failure, never the machine's.
std::string iterator_unavailable_reason(const std::string& target);

// Opens (does not load) the object between `start` and `end`; `name` names
// it in libbpf and in errors. Throws Error, with the reason BPF is
// unavailable when it is.
Object open_embedded(const unsigned char* start, const unsigned char* end, const char* name);

// One whole walk of the iterator `link` is attached to, into `buf` (grown
// as needed, reused between walks): the bytes it wrote. Throws on a
// failure, naming `what`.
size_t read_iterator(const Link& link, std::vector<char>& buf, const std::string& what);

// A BPF hash map used as a set (u64 key, u8 value), in `fd`: adds `key`
// (throws naming `what`), removes it.
void set_insert(int fd, uint64_t key, const std::string& what);
void set_erase(int fd, uint64_t key);

// Makes the set map `fd` hold `keys` and nothing else, and `mirror` (a map
// by the same keys, of what user space keeps for each) follow it: entries
// for keys gone are erased, new ones default-constructed.
template <class Map>
void mirror_set(int fd, const std::set<uint64_t>& keys, Map& mirror, const std::string& what) {
    for (auto it = mirror.begin(); it != mirror.end();) {
        if (keys.count(it->first)) {
            ++it;
            continue;
        }
        set_erase(fd, it->first);
        it = mirror.erase(it);
    }
    for (uint64_t k : keys) {
        if (mirror.count(k)) continue;
        set_insert(fd, k, what);
        mirror[k];
    }
}

// The Error for a failed libbpf call: `what`, errno's text, a hint at the
// privileges on EPERM/EACCES, and libbpf's last message.
Error error(int err, const std::string& what);

}  // namespace vitro::bpf
