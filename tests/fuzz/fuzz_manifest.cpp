// libFuzzer target: OCI/Docker index, manifest and config parsing must never
// crash, hang or leak on any input; bad input surfaces as vitro::Error only,
// and whatever parses survives a to_json round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "image/manifest.hpp"
#include "util/error.hpp"

using namespace vitro::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        Index idx = parse_index(text);
        if (parse_index(to_json(idx).dump()).manifests.size() != idx.manifests.size()) std::abort();
        try {
            select_platform(idx);
        } catch (const vitro::Error&) {
        }
    } catch (const vitro::Error&) {
    }
    try {
        Manifest m = parse_manifest(text);
        Manifest again = parse_manifest(to_json(m).dump());
        if (again.layers.size() != m.layers.size() || again.config.digest != m.config.digest) std::abort();
    } catch (const vitro::Error&) {
    }
    try {
        parse_config(text);
    } catch (const vitro::Error&) {
    }
    return 0;
}
