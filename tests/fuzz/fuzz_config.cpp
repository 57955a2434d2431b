// libFuzzer target: config.json parsing and validation must never crash,
// hang or leak on any input; bad input must surface as vitro::Error only.
#include <cstddef>
#include <cstdint>
#include <string>

#include "oci/spec.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        vitro::oci::Spec s = vitro::oci::parse_spec(text);
        vitro::oci::validate_spec(s);
    } catch (const vitro::Error&) {
    }
    return 0;
}
