// The registry flags pull, push, login and the pulling run/create share
// (--tls-verify, --cert-dir, --authfile, --creds), and their progress display.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "image/pull.hpp"
#include "image/registry.hpp"

namespace vitro::cli {

struct RegistryFlags {
    bool tls_verify = true;
    std::string cert_dir, authfile, creds;
};

void add_registry_flags(CLI::App* cmd, RegistryFlags& f, bool with_creds);
image::RegistryOptions registry_options(const RegistryFlags& f);
// Progress on stderr when it is a terminal and not `quiet`; none otherwise.
image::ProgressFn progress_for(bool quiet);

}  // namespace vitro::cli
