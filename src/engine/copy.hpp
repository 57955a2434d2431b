// `vitro cp`: files between a container (running or stopped) and the host,
// or two containers, or a tar stream on stdin/stdout, with podman's rules:
//   SRC a file:  DEST missing -> a file DEST (its parent must exist);
//                DEST a file -> overwritten; DEST a dir -> DEST/basename(SRC).
//   SRC a dir:   DEST missing -> DEST made, SRC's contents in it;
//                DEST a file -> error; DEST a dir -> DEST/basename(SRC), or,
//                SRC ending in "/.", SRC's contents into DEST.
//   "-" as SRC:  a tar stream from stdin extracted into the directory DEST;
//   "-" as DEST: a tar of SRC to stdout.
// Every container path is hostile: it is resolved confined to the
// container's rootfs (openat2 RESOLVE_IN_ROOT), as the runtime resolves its
// mount points, so a symlink to /etc/shadow or ../../ names the container's
// file, never the host's; what is written is made with *at() calls below a
// directory fd, never at a joined string path. A final symlink in SRC is
// followed (inside the rootfs for a container), as podman does.
#pragma once

#include <string>

namespace vitro::engine {

class Engine;

struct CopyEndpoint {
    std::string container;  // empty: the host (or "-": stdin/stdout)
    std::string path;
};
// podman's [CONTAINER:]PATH: a colon before any "/" names a container, so
// "./a:b" and "/x/a:b" are host paths; "-" alone is the stream.
CopyEndpoint parse_copy_endpoint(const std::string& arg);

struct CopyOptions {
    // podman's --archive (default true): files copied into a container belong
    // to the container's user; false keeps the source's owners.
    bool chown_to_container_user = true;
};

// Throws vitro::Error naming the path (and container) that is missing or wrong.
void copy(Engine& eng, const CopyEndpoint& src, const CopyEndpoint& dst, const CopyOptions& opts);

}  // namespace vitro::engine
