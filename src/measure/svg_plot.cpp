#include "measure/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace vitro::measure {
namespace {

std::string esc(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else if (c == '&') o += "&amp;";
        else o += c;
    }
    return o;
}

std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof(b), "%.1f", v);
    return b;
}

// A "nice" tick step for a range: 1, 2 or 5 times a power of ten.
double tick_step(double range, int ticks) {
    double raw = range / ticks;
    double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * p >= raw) return m * p;
    return 10 * p;
}

std::string label(double v, double step) {
    char b[32];
    std::snprintf(b, sizeof(b), step >= 1 ? "%.0f" : step >= 0.1 ? "%.1f" : "%.2f", v);
    return b;
}

}  // namespace

std::vector<std::pair<double, double>> cdf_points(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    std::vector<std::pair<double, double>> pts;
    // At most ~400 points: a 1000-point CDF line looks the same.
    size_t stride = std::max<size_t>(1, values.size() / 400);
    for (size_t i = 0; i < values.size(); i += stride)
        pts.emplace_back(values[i], static_cast<double>(i + 1) / static_cast<double>(values.size()));
    if (!values.empty()) pts.emplace_back(values.back(), 1.0);
    return pts;
}

std::string render_svg(std::span<const Chart> panels, int width, int panel_height) {
    const double ml = 70, mr = 170, mt = 34, mb = 46;
    std::string out;
    int height = panel_height * static_cast<int>(panels.size());
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
           std::to_string(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    for (size_t pi = 0; pi < panels.size(); ++pi) {
        const Chart& c = panels[pi];
        double y0 = static_cast<double>(pi) * panel_height;
        double pw = width - ml - mr, ph = panel_height - mt - mb;
        double xmin = std::numeric_limits<double>::max(), xmax = -xmin, ymin = xmin, ymax = -xmin;
        for (const auto& s : c.series)
            for (auto [x, y] : s.points) {
                xmin = std::min(xmin, x), xmax = std::max(xmax, x);
                ymin = std::min(ymin, y), ymax = std::max(ymax, y);
            }
        if (xmin > xmax) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
        if (xmax - xmin < 1e-9) xmax = xmin + 1;
        if (ymax - ymin < 1e-9) ymax = ymin + 1;
        double xs = tick_step(xmax - xmin, 8), ys = tick_step(ymax - ymin, 6);
        xmin = std::floor(xmin / xs) * xs, xmax = std::ceil(xmax / xs) * xs;
        ymin = std::floor(ymin / ys) * ys, ymax = std::ceil(ymax / ys) * ys;
        auto X = [&](double x) { return ml + (x - xmin) / (xmax - xmin) * pw; };
        auto Y = [&](double y) { return y0 + mt + ph - (y - ymin) / (ymax - ymin) * ph; };

        out += "<text x=\"" + num(ml) + "\" y=\"" + num(y0 + 20) + "\" font-size=\"14\" font-weight=\"bold\">" + esc(c.title) + "</text>\n";
        out += "<rect x=\"" + num(ml) + "\" y=\"" + num(y0 + mt) + "\" width=\"" + num(pw) + "\" height=\"" + num(ph) +
               "\" fill=\"none\" stroke=\"#444\"/>\n";
        for (double t = xmin; t <= xmax + xs / 2; t += xs) {
            out += "<line x1=\"" + num(X(t)) + "\" y1=\"" + num(y0 + mt) + "\" x2=\"" + num(X(t)) + "\" y2=\"" + num(y0 + mt + ph) +
                   "\" stroke=\"#ddd\"/>\n";
            out += "<text x=\"" + num(X(t)) + "\" y=\"" + num(y0 + mt + ph + 16) + "\" text-anchor=\"middle\">" + label(t, xs) + "</text>\n";
        }
        for (double t = ymin; t <= ymax + ys / 2; t += ys) {
            out += "<line x1=\"" + num(ml) + "\" y1=\"" + num(Y(t)) + "\" x2=\"" + num(ml + pw) + "\" y2=\"" + num(Y(t)) +
                   "\" stroke=\"#ddd\"/>\n";
            out += "<text x=\"" + num(ml - 6) + "\" y=\"" + num(Y(t) + 4) + "\" text-anchor=\"end\">" + label(t, ys) + "</text>\n";
        }
        out += "<text x=\"" + num(ml + pw / 2) + "\" y=\"" + num(y0 + panel_height - 8) + "\" text-anchor=\"middle\">" + esc(c.xlabel) + "</text>\n";
        out += "<text transform=\"translate(16," + num(y0 + mt + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" + esc(c.ylabel) + "</text>\n";
        for (size_t si = 0; si < c.series.size(); ++si) {
            const Series& s = c.series[si];
            if (s.line) {
                out += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"1.5\" points=\"";
                for (auto [x, y] : s.points) out += num(X(x)) + "," + num(Y(y)) + " ";
                out += "\"/>\n";
            } else {
                for (auto [x, y] : s.points)
                    out += "<circle cx=\"" + num(X(x)) + "\" cy=\"" + num(Y(y)) + "\" r=\"1.6\" fill=\"" + s.color + "\"/>\n";
            }
            double ly = y0 + mt + 14 + 18 * static_cast<double>(si);
            out += "<rect x=\"" + num(ml + pw + 12) + "\" y=\"" + num(ly - 9) + "\" width=\"12\" height=\"10\" fill=\"" + s.color + "\"/>\n";
            out += "<text x=\"" + num(ml + pw + 30) + "\" y=\"" + num(ly) + "\">" + esc(s.name) + "</text>\n";
        }
    }
    out += "</svg>\n";
    return out;
}

}  // namespace vitro::measure
