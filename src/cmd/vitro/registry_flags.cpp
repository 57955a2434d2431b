#include "cmd/vitro/registry_flags.hpp"

#include <unistd.h>

#include "image/auth_file.hpp"
#include "image/pull.hpp"

namespace vitro::cli {

void add_registry_flags(CLI::App* cmd, RegistryFlags& f, bool with_creds) {
    cmd->add_flag("--tls-verify", f.tls_verify,
                  "require HTTPS and verify the registry's certificate (--tls-verify=false: also plain HTTP, "
                  "and HTTPS without verification)")
        ->default_str("true");
    cmd->add_option("--cert-dir", f.cert_dir,
                    "certificates for the registry (*.crt CAs, *.cert/*.key client pair); default "
                    "/etc/vitro/certs.d/HOST:PORT, then /etc/containers/certs.d/HOST:PORT");
    cmd->add_option("--authfile", f.authfile,
                    "auth.json with the registry logins ($REGISTRY_AUTH_FILE, /run/containers/0/auth.json for root)");
    if (with_creds) cmd->add_option("--creds", f.creds, "USER:PASSWORD for the registry (instead of a saved login)");
}

image::RegistryOptions registry_options(const RegistryFlags& f) {
    image::RegistryOptions o;
    o.tls_verify = f.tls_verify;
    o.cert_dir = f.cert_dir;
    if (!f.creds.empty()) o.credentials = image::parse_credentials(f.creds);
    return o;
}

image::ProgressFn progress_for(bool quiet) {
    return !quiet && ::isatty(STDERR_FILENO) == 1 ? image::progress_printer(stderr) : image::ProgressFn{};
}

}  // namespace vitro::cli
