// Garbage collection of the content store (`vitro system prune`) and disk
// usage (`vitro system df`).
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>

namespace vitro::image {

class Store;

struct GcReport {
    size_t blobs = 0, layers = 0;  // removed
    size_t temps = 0;              // leftovers of killed writers in tmp/ (Store::remove_orphan_temps)
    uint64_t bytes = 0;            // freed
};

// Removes the blobs no tag reaches (manifest, config, layers) and the unpacked
// layers (<root>/layers/<hex>) that no tagged image lists and no path in
// `layers_in_use` (a container's lower dirs) lies in. Anything modified less
// than `grace` ago is kept: a pull or load in flight tags its image only at the
// end, and its blobs must not go before that. Also removes what killed
// writers left in tmp/ (Store::remove_orphan_temps: no grace needed there).
GcReport collect_garbage(const Store& store, const std::set<std::string>& layers_in_use,
                         std::chrono::seconds grace = std::chrono::hours(1));

}  // namespace vitro::image
