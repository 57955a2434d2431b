// libFuzzer target: the exporter's HTTP request parser reads whatever a
// network peer sends. It must never crash or hang; a parsed request consumed
// no more than it was given, has a path beginning with '/', and parsing the
// same bytes again gives the same request.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "introspect/metrics/http_server.hpp"

using namespace vitro::introspect;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    HttpRequest r;
    std::size_t used = 0;
    std::string why;
    switch (parse_http_request(in, r, used, why)) {
        case HttpParse::ok: {
            if (used == 0 || used > size || r.path.empty() || r.path[0] != '/') std::abort();
            HttpRequest again;
            std::size_t used2 = 0;
            if (parse_http_request(in.substr(0, used), again, used2, why) != HttpParse::ok || used2 != used ||
                again.path != r.path || again.method != r.method || again.keep_alive != r.keep_alive)
                std::abort();
            break;
        }
        case HttpParse::bad:
            if (why.empty()) std::abort();
            break;
        case HttpParse::incomplete:
            break;
    }
    return 0;
}
