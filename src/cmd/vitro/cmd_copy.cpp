// cp (and, below, export / import): files between containers and the host,
// podman's rules and flags; the work is in engine/copy.
#include <memory>
#include <string>

#include "cmd/vitro/common.hpp"
#include "engine/copy.hpp"
#include "util/error.hpp"

namespace vitro::cli {

void add_copy_commands(CLI::App& app, Globals& g) {
    struct CpFlags {
        std::string src, dst;
        bool archive = true;
    };
    auto f = std::make_shared<CpFlags>();
    auto* cp = app.add_subcommand(
        "cp",
        "copy files/folders between a container and the host (or two containers): [CONTAINER:]SRC "
        "[CONTAINER:]DEST; SRC ending in /. copies a directory's contents; \"-\" as SRC extracts a tar "
        "stream from stdin into the directory DEST, as DEST writes a tar of SRC to stdout. The container "
        "may be running or stopped; its paths resolve inside its root file system only");
    cp->add_flag("-a,--archive", f->archive,
                 "files copied into a container belong to its user (default true); --archive=false keeps "
                 "the owners of the source");
    cp->add_option("src", f->src, "[CONTAINER:]SRC_PATH, or - for a tar stream on stdin")->required();
    cp->add_option("dest", f->dst, "[CONTAINER:]DEST_PATH, or - for a tar stream on stdout")->required();
    cp->callback([&g, f] {
        engine::Engine eng(engine_options(g));
        engine::copy(eng, engine::parse_copy_endpoint(f->src), engine::parse_copy_endpoint(f->dst),
                     {.chown_to_container_user = f->archive});
    });
}

}  // namespace vitro::cli
