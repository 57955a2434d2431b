#include "introspect/metrics/exposition.hpp"

#include <charconv>
#include <cmath>

namespace vitro::introspect {

Exposition::Family Exposition::family(std::string_view name, MetricType type, std::string_view help) {
    // Each container names the same families in the same order: the one
    // after the last named is the likely one, checked before the hash.
    if (next_ < families_.size() && families_[next_].name == name) return next_++;
    if (auto it = index_.find(name); it != index_.end()) {
        next_ = it->second + 1;
        return it->second;
    }
    index_.emplace(std::string(name), families_.size());
    families_.push_back(Entry{std::string(name), std::string(help), type, {}});
    next_ = families_.size();
    return families_.size() - 1;
}

namespace {
void append_labels(std::string& out, const Labels& labels, bool& first) {
    for (const auto& [k, v] : labels) {
        out += first ? '{' : ',';
        first = false;
        out += k;
        out += "=\"";
        append_label_value(out, v);
        out += '"';
    }
}
}  // namespace

void Exposition::add(Family f, const Labels& labels, double value) { add(f, labels, {}, value); }

void Exposition::add(Family f, const Labels& common, const Labels& extra, double value) {
    write(f, {}, common, extra, value);
}

void Exposition::add_formatted(Family f, std::string_view labels, const Labels& extra, double value) {
    write(f, labels, {}, extra, value);
}

// One sample line: name{preformatted,a...,b...} value
void Exposition::write(Family f, std::string_view formatted, const Labels& a, const Labels& b, double value) {
    std::string& out = families_.at(f).lines;
    out += families_[f].name;
    bool first = formatted.empty();
    if (!first) {
        out += '{';
        out += formatted;
    }
    append_labels(out, a, first);
    append_labels(out, b, first);
    if (!first) out += '}';
    out += ' ';
    append_value(out, value);
    out += '\n';
    ++samples_;
}

void Exposition::reset() {
    for (auto& e : families_) e.lines.clear();
    samples_ = 0;
}

std::string format_labels(const Labels& labels) {
    std::string out;
    bool first = true;
    append_labels(out, labels, first);
    return out.empty() ? out : out.substr(1);  // without the '{'
}

std::string Exposition::text() const {
    std::string out;
    text(out);
    return out;
}

void Exposition::text(std::string& out) const {
    std::size_t size = 0;
    for (const auto& e : families_) size += e.lines.size() + e.help.size() + 2 * e.name.size() + 32;
    out.clear();
    out.reserve(size);
    for (const auto& e : families_) {
        if (e.lines.empty()) continue;
        out += "# HELP ";
        out += e.name;
        out += ' ';
        for (char c : e.help) {  // HELP escapes \ and newline only
            if (c == '\\') out += "\\\\";
            else if (c == '\n') out += "\\n";
            else out += c;
        }
        out += "\n# TYPE ";
        out += e.name;
        out += e.type == MetricType::counter ? " counter\n" : " gauge\n";
        out += e.lines;
    }
}

void append_label_value(std::string& out, std::string_view value) {
    // In runs between the characters to escape: most values have none.
    std::size_t run = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (c != '\\' && c != '"' && c != '\n') continue;
        out.append(value, run, i - run);
        out += c == '\\' ? "\\\\" : c == '"' ? "\\\"" : "\\n";
        run = i + 1;
    }
    out.append(value, run, std::string_view::npos);
}

void append_value(std::string& out, double value) {
    if (std::isnan(value)) { out += "NaN"; return; }
    if (std::isinf(value)) { out += value > 0 ? "+Inf" : "-Inf"; return; }
    char buf[32];
    // Whole numbers below 2^53 print exactly as integers; others shortest round-trip.
    if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
        auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(value));
        out.append(buf, r.ptr);
    } else {
        auto r = std::to_chars(buf, buf + sizeof buf, value);
        out.append(buf, r.ptr);
    }
}

}  // namespace vitro::introspect
