// `turnout eval`'s scores.svg: the histogram of the judge's scores with the pass line, and
// both models' median latency.
#include <algorithm>
#include <array>
#include <tuple>

#include "shadow/eval_report.hpp"
#include "shadow/eval_text.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;

// SVG geometry: the histogram on the left, the latency bars on the right.
constexpr int kSvgWidth = 760;
constexpr int kSvgHeight = 340;
constexpr int kPlotTop = 50;
constexpr int kPlotBottom = 280;
constexpr int kPlotHeight = kPlotBottom - kPlotTop - 20;  // room for the count labels
constexpr int kHistLeft = 50;
constexpr int kBinWidth = 21;
constexpr int kBins = 20;  // 0-5, ..., 95-100
constexpr int kHistRight = kHistLeft + kBins * kBinWidth;
constexpr int kBarsLeft = 550;
constexpr int kBarWidth = 70;
constexpr int kBarGap = 50;

double score_x(double score) {
    return kHistLeft + std::clamp(score, 0.0, 100.0) * (kHistRight - kHistLeft) / 100.0;
}

std::string svg_text(double x, double y, std::string_view text, std::string_view extra = {}) {
    return "<text x=\"" + fixed(x, 1) + "\" y=\"" + fixed(y, 1) + "\"" +
           (extra.empty() ? "" : " ") + std::string(extra) + ">" + xml_escape(text) + "</text>\n";
}

std::string svg_rect(double x, double y, double width, double height, std::string_view fill) {
    return "<rect x=\"" + fixed(x, 1) + "\" y=\"" + fixed(y, 1) + "\" width=\"" + fixed(width, 1) +
           "\" height=\"" + fixed(height, 1) + "\" fill=\"" + std::string(fill) + "\"/>\n";
}

std::string svg_line(double x1, double y1, double x2, double y2, std::string_view extra) {
    return "<line x1=\"" + fixed(x1, 1) + "\" y1=\"" + fixed(y1, 1) + "\" x2=\"" + fixed(x2, 1) +
           "\" y2=\"" + fixed(y2, 1) + "\" " + std::string(extra) + "/>\n";
}

std::string svg_histogram(const EvalSummary& s, double pass_score) {
    std::array<std::size_t, kBins> bins{};
    std::size_t unscored = 0;
    for (const auto& record : s.records) {
        if (!record.score) {
            ++unscored;
            continue;
        }
        const int bin = std::clamp(static_cast<int>(*record.score / 5.0), 0, kBins - 1);
        ++bins[static_cast<std::size_t>(bin)];
    }
    const std::size_t tallest =
        std::max<std::size_t>(1, *std::max_element(bins.begin(), bins.end()));
    std::string out =
        svg_text((kHistLeft + kHistRight) / 2.0, 24,
                 "Judge scores (" + std::to_string(s.pairs - unscored) + " scored pairs)",
                 "text-anchor=\"middle\" font-size=\"15\"");
    for (int i = 0; i < kBins; ++i) {
        const std::size_t count = bins[static_cast<std::size_t>(i)];
        if (count == 0) continue;
        const double height =
            static_cast<double>(count) / static_cast<double>(tallest) * kPlotHeight;
        const double x = kHistLeft + i * kBinWidth + 1;
        const bool passing = i * 5.0 >= pass_score;
        out += svg_rect(x, kPlotBottom - height, kBinWidth - 2, height,
                        passing ? "#4c9a5b" : "#c95b4b");
        out += svg_text(x + (kBinWidth - 2) / 2.0, kPlotBottom - height - 4, std::to_string(count),
                        "text-anchor=\"middle\" font-size=\"10\"");
    }
    out += svg_line(kHistLeft, kPlotBottom, kHistRight, kPlotBottom, "stroke=\"#333\"");
    for (int tick = 0; tick <= 100; tick += 25) {
        out += svg_text(score_x(tick), kPlotBottom + 16, std::to_string(tick),
                        "text-anchor=\"middle\"");
    }
    out += svg_text((kHistLeft + kHistRight) / 2.0, kPlotBottom + 34, "score (bins of 5)",
                    "text-anchor=\"middle\"");
    const double pass_x = score_x(pass_score);
    out += svg_line(pass_x, kPlotTop - 10, pass_x, kPlotBottom,
                    "id=\"pass-line\" stroke=\"#d62728\" stroke-width=\"2\" "
                    "stroke-dasharray=\"6 4\"");
    out += svg_text(pass_x - 4, kPlotTop - 14, "pass >= " + number_text(pass_score),
                    "text-anchor=\"end\" fill=\"#d62728\"");
    if (unscored > 0) {
        out += svg_text(kHistLeft, kPlotBottom + 52,
                        std::to_string(unscored) +
                            " pairs without a score (errors, failed "
                            "candidate calls) are not shown",
                        "font-size=\"11\" fill=\"#666\"");
    }
    return out;
}

std::string svg_latency(const EvalSummary& s, const ReportContext& context) {
    const double tallest = std::max({s.primary.latency_p50_ms, s.candidate.latency_p50_ms, 1e-9});
    std::string out = svg_text(kBarsLeft + kBarWidth + kBarGap / 2.0, 24, "Median latency",
                               "text-anchor=\"middle\" font-size=\"15\"");
    const std::array<std::tuple<std::string, std::string, double, const char*>, 2> bars = {{
        {"primary", context.primary, s.primary.latency_p50_ms, "#4c78a8"},
        {"candidate", context.candidate, s.candidate.latency_p50_ms, "#f58518"},
    }};
    for (std::size_t i = 0; i < bars.size(); ++i) {
        const auto& [label, model, value, fill] = bars[i];
        const double x = kBarsLeft + static_cast<double>(i) * (kBarWidth + kBarGap);
        const double height = value / tallest * kPlotHeight;
        const double centre = x + kBarWidth / 2.0;
        out += svg_rect(x, kPlotBottom - height, kBarWidth, height, fill);
        out += svg_text(centre, kPlotBottom - height - 4, millis(value), "text-anchor=\"middle\"");
        out += svg_text(centre, kPlotBottom + 16, label, "text-anchor=\"middle\"");
        out += svg_text(centre, kPlotBottom + 32, shorten(model, 22),
                        "text-anchor=\"middle\" font-size=\"10\" fill=\"#666\"");
    }
    out += svg_line(kBarsLeft - 10, kPlotBottom, kBarsLeft + 2 * kBarWidth + kBarGap + 10,
                    kPlotBottom, "stroke=\"#333\"");
    return out;
}

}  // namespace

std::string render_svg(const EvalSummary& summary, const ReportContext& context) {
    std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                      std::to_string(kSvgWidth) + "\" height=\"" + std::to_string(kSvgHeight) +
                      "\" viewBox=\"0 0 " + std::to_string(kSvgWidth) + " " +
                      std::to_string(kSvgHeight) +
                      "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    out += "<title>" + xml_escape("turnout eval: route " + context.route) + "</title>\n";
    out += svg_rect(0, 0, kSvgWidth, kSvgHeight, "white");
    out += svg_histogram(summary, context.params.pass_score);
    out += svg_latency(summary, context);
    out += "</svg>\n";
    return out;
}

}  // namespace turnout::shadow
