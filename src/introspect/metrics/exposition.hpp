// Prometheus text exposition (format 0.0.4): metric families with their HELP
// and TYPE lines, each family's samples together however they were added.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vitro::introspect {

using Label = std::pair<std::string_view, std::string_view>;
using Labels = std::vector<Label>;

enum class MetricType { counter, gauge };

class Exposition {
public:
    using Family = std::size_t;

    // Declares a family once (a second call with the same name returns the
    // first); samples added to it are written under its HELP and TYPE lines.
    Family family(std::string_view name, MetricType type, std::string_view help);
    void add(Family f, const Labels& labels, double value);
    // Two label sets: the container's (id, name, image, ...) and the sample's own.
    void add(Family f, const Labels& common, const Labels& extra, double value);

    // `labels` already formatted: `k="v",k2="v2"` with values escaped (see
    // format_labels); a container's set is formatted once, not per sample.
    void add_formatted(Family f, std::string_view labels, const Labels& extra, double value);
    void add_formatted(Family f, std::string_view labels, double value) { add_formatted(f, labels, {}, value); }

    // Forgets the samples and keeps the families and their buffers' capacity:
    // the next scrape's text is built without reallocation.
    void reset();

    // The whole text; families without samples are left out.
    std::string text() const;
    // The same into `out` (cleared first; its capacity is reused).
    void text(std::string& out) const;
    std::size_t samples() const { return samples_; }

private:
    void write(Family f, std::string_view formatted, const Labels& a, const Labels& b, double value);
    struct Entry {
        std::string name, help;
        MetricType type;
        std::string lines;
    };
    std::vector<Entry> families_;
    // name -> families_ position, looked up by string_view: a family is named
    // once per container per scrape, and building a std::string each time cost
    // an allocation (most names are longer than the small-string buffer).
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> index_;
    std::size_t samples_ = 0;
    std::size_t next_ = 0;  // the family after the one named last
};

// `k="v",...` for Exposition::add's preformatted form.
std::string format_labels(const Labels& labels);
// A label value with \, " and newline escaped as the format requires.
void append_label_value(std::string& out, std::string_view value);
// A sample value: integers without exponent, +Inf/-Inf/NaN spelled as Prometheus does.
void append_value(std::string& out, double value);

}  // namespace vitro::introspect
