// Summary statistics of a set of RTTs (or overheads), in the input's unit.
#pragma once

#include <cstddef>
#include <span>

namespace vitro::measure {

struct Summary {
    size_t n = 0;
    double min = 0, max = 0, mean = 0, median = 0, p90 = 0, p99 = 0, stdev = 0;
};

// Percentiles by linear interpolation between closest ranks (numpy's
// default); stdev is the sample standard deviation (n - 1). Empty input: n = 0.
Summary summarize(std::span<const double> values);
// The q-quantile (0..1) of values sorted ascending.
double quantile_sorted(std::span<const double> sorted, double q);

}  // namespace vitro::measure
