// The config.json that `vitro-runtime spec` writes (runc's defaults).
#pragma once

#include <nlohmann/json.hpp>

namespace vitro::oci {

nlohmann::json default_spec(bool rootless);
// The OCI "features" document (runtime-spec features.md) for `features`.
nlohmann::json features_json();

}  // namespace vitro::oci
