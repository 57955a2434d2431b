#include "measure/stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace vitro::measure {

double quantile_sorted(std::span<const double> sorted, double q) {
    if (sorted.empty()) return 0;
    double pos = q * static_cast<double>(sorted.size() - 1);
    auto i = static_cast<size_t>(std::floor(pos));
    if (i + 1 >= sorted.size()) return sorted.back();
    double frac = pos - static_cast<double>(i);
    return sorted[i] + (sorted[i + 1] - sorted[i]) * frac;
}

Summary summarize(std::span<const double> values) {
    Summary s;
    s.n = values.size();
    if (values.empty()) return s;
    std::vector<double> v(values.begin(), values.end());
    std::sort(v.begin(), v.end());
    s.min = v.front();
    s.max = v.back();
    s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    s.median = quantile_sorted(v, 0.5);
    s.p90 = quantile_sorted(v, 0.9);
    s.p99 = quantile_sorted(v, 0.99);
    if (v.size() > 1) {
        double ss = 0;
        for (double x : v) ss += (x - s.mean) * (x - s.mean);
        s.stdev = std::sqrt(ss / static_cast<double>(v.size() - 1));
    }
    return s;
}

}  // namespace vitro::measure
