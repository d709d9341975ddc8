// `turnout eval`'s renderings in text: the console summary, report.md and progress lines.
#include "shadow/eval_report.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "shadow/eval_text.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;

std::string pairs_line(const ReportContext& context, const EvalSummary& s) {
    std::string line = std::to_string(s.pairs) + " (" + std::to_string(context.sent) +
                       " sent by this run, " + std::to_string(context.reused) +
                       " reused from an earlier run";
    if (context.broken_lines > 0) {
        line += "; " + std::to_string(context.broken_lines) + " broken prompt line" +
                (context.broken_lines == 1 ? "" : "s") + " skipped";
    }
    return line + ")";
}

std::string pass_rate_line(const EvalSummary& s, const EvalParams& params) {
    return percent(s.pass_rate) + " (" + std::to_string(s.passes) + " pass, " +
           std::to_string(s.fails) + " fail, " + std::to_string(s.errors) +
           " errors; pass = score >= " + number_text(params.pass_score) +
           "), 95% Wilson interval " + percent(s.wilson_lower) + " to " + percent(s.wilson_upper);
}

std::string sprt_line(const EvalSummary& s, const EvalParams& params) {
    std::string line(to_string(s.sprt.decision));
    if (s.sprt.decision != SprtDecision::undecided) {
        line += " after " + std::to_string(s.sprt.samples_used) + " samples";
    }
    return line + " (statistic " + fixed(s.sprt.llr, 3) + ", reject at " + fixed(s.sprt.reject, 3) +
           ", accept at " + fixed(s.sprt.accept, 3) + "; H1 pass rate " +
           percent(params.threshold) + " vs H0 " + percent(params.rollback_threshold) +
           ", confidence " + percent(params.confidence) + ")";
}

std::string speed_line(const EvalSummary& s) {
    std::string line = "primary " + millis(s.primary.latency_p50_ms) + ", candidate " +
                       millis(s.candidate.latency_p50_ms);
    if (s.speedup <= 0) return line;
    line += ": speed-up " + fixed(s.speedup, 2) + "x (primary / candidate)";
    return line;
}

std::string ttft_line(const EvalSummary& s) {
    return "primary " + millis(s.primary.ttft_p50_ms) + ", candidate " +
           millis(s.candidate.ttft_p50_ms) + " (calls not streamed: TTFT = latency)";
}

std::string cost_line(const EvalSummary& s) {
    std::string line = "primary " + usd(s.primary.cost_per_1k_usd) + ", candidate " +
                       usd(s.candidate.cost_per_1k_usd) + ": projected saving " +
                       usd(s.saving_per_1k_usd) + " per 1,000 requests";
    if (s.primary.cost_per_1k_usd > 0) {
        line += " (" + percent(s.saving_per_1k_usd / s.primary.cost_per_1k_usd) + ")";
    }
    return line;
}

std::string worst_text(const PairRecord& record) {
    return "line " + std::to_string(record.line_number) + ": score " + score_text(record.score) +
           " (" + std::string(to_string(record.verdict)) +
           "): " + shorten(one_line(record.reason), 160) +
           " | diff: " + shorten(one_line(record.diff_summary), 160);
}

/// The summary as (label, value) rows, shared by the console and report.md.
std::vector<std::pair<std::string, std::string>> summary_rows(const EvalSummary& s,
                                                              const ReportContext& context) {
    const EvalParams& params = context.params;
    return {
        {"pairs", pairs_line(context, s)},
        {"pass rate", pass_rate_line(s, params)},
        {"sequential test", sprt_line(s, params)},
        {"verdict", std::string(to_string(s.verdict)) + ": " + s.why},
        {"latency p50", speed_line(s)},
        {"TTFT p50", ttft_line(s)},
        {"cost / 1,000 req", cost_line(s)},
        {"tokens", "primary " + std::to_string(s.primary.input_tokens) + " in / " +
                       std::to_string(s.primary.output_tokens) + " out, candidate " +
                       std::to_string(s.candidate.input_tokens) + " in / " +
                       std::to_string(s.candidate.output_tokens) + " out"},
    };
}

void append_pairs_table(std::string& out, const std::vector<PairRecord>& records) {
    out +=
        "| line | prompt hash | score | verdict | primary ms | candidate ms | primary tokens "
        "in/out | candidate tokens in/out | primary $ | candidate $ | reason | diff_summary "
        "|\n|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|\n";
    for (const auto& r : records) {
        out += "| " + std::to_string(r.line_number) + " | `" + r.prompt_hash.substr(0, 12) +
               "` | " + score_text(r.score) + " | " + std::string(to_string(r.verdict)) + " | " +
               fixed(r.primary.latency_ms, 1) + " | " + fixed(r.candidate.latency_ms, 1) + " | " +
               std::to_string(r.primary.input_tokens) + "/" +
               std::to_string(r.primary.output_tokens) + " | " +
               std::to_string(r.candidate.input_tokens) + "/" +
               std::to_string(r.candidate.output_tokens) + " | " + fixed(r.primary.cost_usd, 6) +
               " | " + fixed(r.candidate.cost_usd, 6) + " | " + markdown_cell(r.reason, 200) +
               " | " + markdown_cell(r.diff_summary, 200) + " |\n";
    }
}

}  // namespace

std::string render_summary(const EvalSummary& summary, const ReportContext& context) {
    std::string out = "turnout eval: route " + context.route + ": primary " + context.primary +
                      ", candidate " + context.candidate + ", judge " + context.judge + "\n";
    for (const auto& [label, value] : summary_rows(summary, context)) {
        out += label + ":" + std::string(label.size() < 17 ? 17 - label.size() : 1, ' ') + value +
               "\n";
    }
    out += "worst pairs:\n";
    if (summary.worst.empty()) out += "  (none judged)\n";
    for (const auto& record : summary.worst) out += "  " + worst_text(record) + "\n";
    if (!context.out_dir.empty()) {
        out += "report:           " + context.out_dir +
               "/report.md (also verdicts.jsonl, "
               "scores.svg)\n";
    }
    return out;
}

std::string render_report(const EvalSummary& summary, const ReportContext& context) {
    std::string out = "# turnout eval: route `" + context.route + "`\n\n";
    out += "Primary `" + context.primary + "`, candidate `" + context.candidate + "`, judge `" +
           context.judge + "`; prompts from `" + context.prompts_file + "`.\n\n";
    out += "**Verdict: " + std::string(to_string(summary.verdict)) + "**: " + summary.why + ".\n\n";
    out += "| | |\n|---|---|\n";
    for (const auto& [label, value] : summary_rows(summary, context)) {
        out += "| " + label + " | " + markdown_cell(value, 1000) + " |\n";
    }
    out += "\nThe rule: switch when the pass rate >= threshold " +
           percent(context.params.threshold) + " on at least " +
           std::to_string(summary.required_samples) +
           " samples and either the sequential test accepted or the Wilson lower bound >= "
           "rollback_threshold " +
           percent(context.params.rollback_threshold) +
           "; do not switch when the sequential test rejected or the pass rate is below the "
           "threshold; inconclusive with too few samples or more than 20% errors.\n\n";
    out += "![scores and latency](scores.svg)\n\n## The five worst pairs\n\n";
    out += "| line | score | verdict | reason | diff_summary |\n|---:|---:|---|---|---|\n";
    for (const auto& r : summary.worst) {
        out += "| " + std::to_string(r.line_number) + " | " + score_text(r.score) + " | " +
               std::string(to_string(r.verdict)) + " | " + markdown_cell(r.reason, 400) + " | " +
               markdown_cell(r.diff_summary, 400) + " |\n";
    }
    out += "\n## Every pair\n\n";
    append_pairs_table(out, summary.records);
    return out;
}

std::string progress_text(const EvalProgress& p) {
    const std::size_t samples = p.passes + p.fails;
    std::string out = std::to_string(p.done) + "/" + std::to_string(p.total) + " pairs, pass " +
                      std::to_string(p.passes) + "/" + std::to_string(samples);
    if (samples > 0) {
        out += " (" + percent(static_cast<double>(p.passes) / static_cast<double>(samples)) + ")";
    }
    out += ", " + std::to_string(p.errors) + (p.errors == 1 ? " error" : " errors") + ", ETA ";
    if (p.done == 0) return out + "?";
    const double left = p.elapsed_s / static_cast<double>(p.done) *
                        static_cast<double>(p.total - std::min(p.done, p.total));
    const auto seconds = static_cast<long long>(std::ceil(finite(left)));
    if (seconds < 60) return out + std::to_string(seconds) + "s";
    const std::string rest = std::to_string(seconds % 60);
    return out + std::to_string(seconds / 60) + "m" + (rest.size() < 2 ? "0" : "") + rest + "s";
}

bool progress_milestone(std::size_t done, std::size_t total) {
    if (total == 0 || done == 0) return false;
    const std::size_t step = std::max<std::size_t>(1, (total + 9) / 10);
    return done == total || done % step == 0;
}

}  // namespace turnout::shadow
