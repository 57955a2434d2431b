// Minimal SVG charts (no plotting library in the build): panels stacked
// vertically, each with axes, ticks, a legend, and series drawn as lines or
// points.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

namespace vitro::measure {

struct Series {
    std::string name;
    std::string color;  // CSS colour
    std::vector<std::pair<double, double>> points;
    bool line = true;   // false: points only
};

struct Chart {
    std::string title, xlabel, ylabel;
    std::vector<Series> series;
};

std::string render_svg(std::span<const Chart> panels, int width = 900, int panel_height = 320);

// The empirical CDF of values as (value, fraction) points.
std::vector<std::pair<double, double>> cdf_points(std::vector<double> values);

}  // namespace vitro::measure
