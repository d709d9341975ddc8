#include "shadow/eval_report.hpp"

#include <openssl/evp.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>
#include <utility>

#include "routing/json_input.hpp"

namespace turnout::shadow {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// Deeper JSON is no chat request; the bound keeps the recursive canonical writer safe.
constexpr int kMaxJsonDepth = 64;
/// The rule's sample floor (the seed's "50-100 samples") and error ceiling.
constexpr std::uint32_t kEnoughSamples = 50;
constexpr double kMaxErrorShare = 0.20;
constexpr std::size_t kWorstCount = 5;

/// Prompt lines, report lines and requests: exact numbers (the hash of a request must not
/// depend on rounding), duplicate keys refused (two readers would see two requests).
constexpr routing::JsonInputOptions kJsonOptions{.max_depth = kMaxJsonDepth,
                                                 .full_precision = true};

/// Parses outside JSON (prompt files, report files) with the shared bounded reader.
routing::JsonInputResult parse_json(std::string_view text, rapidjson::Document& document) {
    return routing::parse_json_input(text, document, kJsonOptions);
}

// ---------------------------------------------------------------------------------------------
// Text helpers

std::string fixed(double value, int decimals) {
    if (!std::isfinite(value)) return value > 0 ? "inf" : (value < 0 ? "-inf" : "nan");
    std::array<char, 64> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "%.*f", decimals, value);
    return buffer.data();
}

std::string percent(double share) { return fixed(share * 100.0, 1) + "%"; }
std::string usd(double value) { return (value < 0 ? "-$" : "$") + fixed(std::abs(value), 4); }
std::string millis(double value) { return fixed(value, 1) + " ms"; }

/// "97", "97.5": scores are mostly integers.
std::string number_text(double value) {
    return value == std::floor(value) && std::abs(value) < 1e15 ? fixed(value, 0) : fixed(value, 1);
}

std::string score_text(const std::optional<double>& score) {
    return score ? number_text(*score) : std::string("-");
}

/// At most `limit` bytes of `text`, cut at a UTF-8 boundary, with "..." when cut.
std::string shorten(std::string_view text, std::size_t limit) {
    if (text.size() <= limit) return std::string(text);
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return std::string(text.substr(0, end)) + "...";
}

/// One line of text: line breaks and tabs become spaces.
std::string one_line(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
    return out;
}

std::string markdown_cell(std::string_view text, std::size_t limit) {
    std::string out;
    for (const char c : shorten(one_line(text), limit)) {
        if (c == '|') out += '\\';
        out.push_back(c);
    }
    return out;
}

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&apos;";
                break;
            default:
                out.push_back(c);
        }
    }
    return out;
}

double finite(double value) { return std::isfinite(value) ? value : 0.0; }

double median(std::vector<double> values) {
    if (values.empty()) return 0.0;
    std::sort(values.begin(), values.end());
    const std::size_t mid = values.size() / 2;
    return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2.0;
}

// ---------------------------------------------------------------------------------------------
// JSON helpers

/// Writes `value` with object members sorted by name. Recursive: only on documents from
/// parse_json, whose depth is bounded.
void write_canonical(Writer& writer, const rapidjson::Value& value) {
    if (value.IsObject()) {
        std::vector<const rapidjson::Value::Member*> members;
        for (const auto& member : value.GetObject()) members.push_back(&member);
        std::stable_sort(members.begin(), members.end(), [](const auto* a, const auto* b) {
            return std::string_view(a->name.GetString(), a->name.GetStringLength()) <
                   std::string_view(b->name.GetString(), b->name.GetStringLength());
        });
        writer.StartObject();
        for (const auto* member : members) {
            writer.Key(member->name.GetString(), member->name.GetStringLength());
            write_canonical(writer, member->value);
        }
        writer.EndObject();
    } else if (value.IsArray()) {
        writer.StartArray();
        for (const auto& item : value.GetArray()) write_canonical(writer, item);
        writer.EndArray();
    } else {
        value.Accept(writer);
    }
}

std::string compact(const rapidjson::Value& value) {
    rapidjson::StringBuffer out;
    Writer writer(out);
    value.Accept(writer);
    return {out.GetString(), out.GetSize()};
}

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
    const auto found = object.FindMember(name);
    return found == object.MemberEnd() ? nullptr : &found->value;
}

std::string string_member(const rapidjson::Value& object, const char* name) {
    const auto* value = member(object, name);
    return value != nullptr && value->IsString()
               ? std::string(value->GetString(), value->GetStringLength())
               : std::string();
}

double number_member(const rapidjson::Value& object, const char* name) {
    const auto* value = member(object, name);
    return value != nullptr && value->IsNumber() ? finite(value->GetDouble()) : 0.0;
}

std::uint64_t count_member(const rapidjson::Value& object, const char* name) {
    const auto* value = member(object, name);
    return value != nullptr && value->IsUint64() ? value->GetUint64() : 0;
}

bool bool_member(const rapidjson::Value& object, const char* name) {
    const auto* value = member(object, name);
    return value != nullptr && value->IsBool() && value->GetBool();
}

// ---------------------------------------------------------------------------------------------
// Prompts

/// Why `document` is not a usable chat request; "" when it is.
std::string request_problem(const rapidjson::Document& document) {
    if (!document.IsObject()) return "expected a JSON object with `messages`";
    const auto* messages = member(document, "messages");
    if (messages == nullptr) return "missing `messages`";
    if (!messages->IsArray() || messages->Empty()) {
        return "`messages` must be a non-empty array";
    }
    for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
        const auto& message = (*messages)[i];
        if (!message.IsObject() || member(message, "role") == nullptr ||
            !member(message, "role")->IsString()) {
            return "`messages[" + std::to_string(i) + "]` must be an object with a string `role`";
        }
    }
    return {};
}

/// Parses one non-blank line into `prompt`; returns the problem, or "" when usable.
std::string parse_prompt_line(std::string_view line, EvalPrompt& prompt) {
    rapidjson::Document document;
    const routing::JsonInputResult parsed = parse_json(line, document);
    if (parsed.error == routing::JsonInputError::too_deep) return "JSON nested too deeply";
    if (parsed.error == routing::JsonInputError::duplicate_key) {
        return "not valid JSON: an object names the same key twice (column " +
               std::to_string(parsed.offset + 1) + ")";
    }
    if (!parsed) return "not valid JSON (column " + std::to_string(parsed.offset + 1) + ")";
    if (std::string problem = request_problem(document); !problem.empty()) return problem;
    rapidjson::StringBuffer out;
    Writer writer(out);
    write_canonical(writer, document);
    prompt.request_json = compact(document);
    prompt.hash = sha256_hex({out.GetString(), out.GetSize()});
    return {};
}

// ---------------------------------------------------------------------------------------------
// Records

void key(Writer& writer, const std::string& name) {
    writer.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()), true);
}

void write_side(Writer& writer, const std::string& prefix, const SideRecord& side) {
    key(writer, prefix + "ok");
    writer.Bool(side.ok);
    key(writer, prefix + "error");
    writer.String(side.error);
    key(writer, prefix + "latency_ms");
    writer.Double(finite(side.latency_ms));
    key(writer, prefix + "ttft_ms");
    writer.Double(finite(side.ttft_ms));
    key(writer, prefix + "input_tokens");
    writer.Uint64(side.input_tokens);
    key(writer, prefix + "output_tokens");
    writer.Uint64(side.output_tokens);
    key(writer, prefix + "cost_usd");
    writer.Double(finite(side.cost_usd));
}

SideRecord read_side(const rapidjson::Value& object, const std::string& prefix) {
    SideRecord side;
    side.ok = bool_member(object, (prefix + "ok").c_str());
    side.error = string_member(object, (prefix + "error").c_str());
    side.latency_ms = number_member(object, (prefix + "latency_ms").c_str());
    side.ttft_ms = number_member(object, (prefix + "ttft_ms").c_str());
    side.input_tokens = count_member(object, (prefix + "input_tokens").c_str());
    side.output_tokens = count_member(object, (prefix + "output_tokens").c_str());
    side.cost_usd = number_member(object, (prefix + "cost_usd").c_str());
    return side;
}

std::optional<VerdictKind> verdict_from(std::string_view text) {
    for (const auto kind : {VerdictKind::pass, VerdictKind::fail, VerdictKind::error}) {
        if (to_string(kind) == text) return kind;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The verdict

void decide(EvalSummary& s, const EvalParams& params) {
    const auto set = [&s](EvalVerdict verdict, std::string why) {
        s.verdict = verdict;
        s.why = std::move(why);
    };
    const std::string rate = "pass rate " + percent(s.pass_rate);
    const std::string over = " over " + std::to_string(s.samples) + " samples";
    const std::string wilson = "Wilson lower bound " + percent(s.wilson_lower);
    if (s.samples == 0) {
        return set(EvalVerdict::inconclusive, "no pair got a pass/fail verdict");
    }
    if (static_cast<double>(s.errors) > kMaxErrorShare * static_cast<double>(s.pairs)) {
        return set(EvalVerdict::inconclusive,
                   "too many errors: " + std::to_string(s.errors) + " of " +
                       std::to_string(s.pairs) + " pairs have no verdict (" +
                       percent(static_cast<double>(s.errors) / static_cast<double>(s.pairs)) +
                       ", more than 20%)");
    }
    if (s.sprt.decision == SprtDecision::rejected) {
        return set(EvalVerdict::do_not_switch,
                   "the sequential test rejected a pass rate >= " + percent(params.threshold) +
                       " after " + std::to_string(s.sprt.samples_used) + " samples (" + rate +
                       over + ")");
    }
    if (s.samples < s.required_samples) {
        return set(EvalVerdict::inconclusive, "too few samples: " + std::to_string(s.samples) +
                                                  " pass/fail verdicts, " +
                                                  std::to_string(s.required_samples) + " needed");
    }
    if (s.pass_rate < params.threshold) {
        return set(EvalVerdict::do_not_switch,
                   rate + " < threshold " + percent(params.threshold) + over);
    }
    const std::string base = rate + " >= threshold " + percent(params.threshold) + over;
    if (s.sprt.decision == SprtDecision::accepted) {
        return set(EvalVerdict::switch_to_candidate,
                   base + ", and the sequential test accepted after " +
                       std::to_string(s.sprt.samples_used) + " samples");
    }
    if (s.wilson_lower >= params.rollback_threshold) {
        return set(EvalVerdict::switch_to_candidate, base + ", and the " + wilson +
                                                         " >= rollback_threshold " +
                                                         percent(params.rollback_threshold));
    }
    set(EvalVerdict::inconclusive,
        base + ", but the evidence is weak: the sequential test is undecided and the " + wilson +
            " < rollback_threshold " + percent(params.rollback_threshold));
}

SideSummary summarise_side(const std::vector<PairRecord>& records, bool primary) {
    SideSummary side;
    std::vector<double> latency;
    std::vector<double> ttft;
    for (const auto& record : records) {
        const SideRecord& call = primary ? record.primary : record.candidate;
        if (!call.ok) continue;
        ++side.ok_calls;
        latency.push_back(call.latency_ms);
        ttft.push_back(call.ttft_ms);
        side.input_tokens += call.input_tokens;
        side.output_tokens += call.output_tokens;
        side.cost_usd += call.cost_usd;
    }
    side.latency_p50_ms = median(std::move(latency));
    side.ttft_p50_ms = median(std::move(ttft));
    if (side.ok_calls > 0) {
        side.cost_per_1k_usd = side.cost_usd / static_cast<double>(side.ok_calls) * 1000.0;
    }
    return side;
}

void count_verdicts(EvalSummary& s) {
    for (const auto& record : s.records) {
        ++s.pairs;
        if (record.verdict == VerdictKind::pass) ++s.passes;
        if (record.verdict == VerdictKind::fail) ++s.fails;
        if (record.verdict == VerdictKind::error) ++s.errors;
        if (record.judged()) {
            ++s.judge_calls;
            if (record.verdict == VerdictKind::error) ++s.judge_failures;
        }
    }
    s.samples = s.passes + s.fails;
}

// ---------------------------------------------------------------------------------------------
// Renderings

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

// ---------------------------------------------------------------------------------------------
// The prompts file

PromptFile parse_prompts(std::string_view text) {
    PromptFile file;
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    std::size_t line_number = 0;
    while (!text.empty()) {
        ++line_number;
        const std::size_t newline = text.find('\n');
        std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
        EvalPrompt prompt;
        prompt.line_number = line_number;
        std::string problem = parse_prompt_line(line, prompt);
        if (problem.empty()) {
            file.prompts.push_back(std::move(prompt));
        } else {
            file.problems.push_back({line_number, std::move(problem)});
        }
    }
    return file;
}

std::string format_problem(std::string_view file, const PromptProblem& problem) {
    return std::string(file) + ":" + std::to_string(problem.line_number) + ": " + problem.reason;
}

std::string canonical_json(std::string_view json) {
    rapidjson::Document document;
    if (!parse_json(json, document)) return {};
    rapidjson::StringBuffer out;
    Writer writer(out);
    write_canonical(writer, document);
    return {out.GetString(), out.GetSize()};
}

std::string sha256_hex(std::string_view text) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
        return {};
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
        hex.push_back(kHex[digest[i] >> 4]);
        hex.push_back(kHex[digest[i] & 0xF]);
    }
    return hex;
}

std::string request_with_model(std::string_view request_json, std::string_view model) {
    rapidjson::Document document;
    if (!parse_json(request_json, document) || !document.IsObject()) {
        return std::string(request_json);
    }
    rapidjson::Value name(model.data(), static_cast<rapidjson::SizeType>(model.size()),
                          document.GetAllocator());
    if (auto found = document.FindMember("model"); found != document.MemberEnd()) {
        found->value = std::move(name);
    } else {
        document.AddMember("model", std::move(name), document.GetAllocator());
    }
    return compact(document);
}

// ---------------------------------------------------------------------------------------------
// One judged pair

void settle_pair(PairRecord& record, const ParsedVerdict& verdict, double pass_score) {
    record.score.reset();
    record.diff_summary.clear();
    if (!record.primary.ok) {
        // No reference answer: no evidence either way (as in the shadow loop).
        record.verdict = VerdictKind::error;
        record.reason = "primary failed: " + record.primary.error;
        return;
    }
    if (!record.candidate.ok) {
        record.verdict = VerdictKind::fail;
        record.reason = "candidate failed: " + record.candidate.error;
        return;
    }
    record.verdict = classify(verdict, pass_score);
    if (verdict.ok) record.score = verdict.score;
    record.reason = verdict.ok || verdict.error.empty() ? verdict.reason : verdict.error;
    record.diff_summary = verdict.diff_summary;
}

std::string to_json_line(const PairRecord& record) {
    rapidjson::StringBuffer out;
    Writer writer(out);
    writer.StartObject();
    writer.Key("line_number");
    writer.Uint64(record.line_number);
    writer.Key("prompt_hash");
    writer.String(record.prompt_hash);
    writer.Key("score");
    if (record.score && std::isfinite(*record.score)) {
        writer.Double(*record.score);
    } else {
        writer.Null();
    }
    writer.Key("pass");
    writer.Bool(record.verdict == VerdictKind::pass);
    writer.Key("verdict");
    writer.String(std::string(to_string(record.verdict)));
    writer.Key("reason");
    writer.String(record.reason);
    writer.Key("diff_summary");
    writer.String(record.diff_summary);
    write_side(writer, "primary_", record.primary);
    write_side(writer, "candidate_", record.candidate);
    writer.EndObject();
    return {out.GetString(), out.GetSize()};
}

std::optional<PairRecord> parse_record(std::string_view line) {
    rapidjson::Document document;
    if (!parse_json(line, document) || !document.IsObject()) return std::nullopt;
    const auto* number = member(document, "line_number");
    const auto* score = member(document, "score");
    const auto verdict = verdict_from(string_member(document, "verdict"));
    PairRecord record;
    record.prompt_hash = string_member(document, "prompt_hash");
    if (number == nullptr || !number->IsUint64() || number->GetUint64() == 0 ||
        record.prompt_hash.empty() || !verdict || score == nullptr ||
        !(score->IsNull() || score->IsNumber())) {
        return std::nullopt;
    }
    record.line_number = static_cast<std::size_t>(number->GetUint64());
    if (score->IsNumber()) record.score = score->GetDouble();
    record.verdict = *verdict;
    record.reason = string_member(document, "reason");
    record.diff_summary = string_member(document, "diff_summary");
    record.primary = read_side(document, "primary_");
    record.candidate = read_side(document, "candidate_");
    return record;
}

SavedVerdicts parse_verdicts_file(std::string_view text) {
    SavedVerdicts saved;
    std::size_t line_number = 0;
    while (!text.empty()) {
        ++line_number;
        const std::size_t newline = text.find('\n');
        const std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        if (auto record = parse_record(line)) {
            saved.records.push_back(std::move(*record));
        } else {
            saved.bad_lines.push_back(line_number);
        }
    }
    return saved;
}

ResumePlan plan_resume(const std::vector<EvalPrompt>& prompts,
                       const std::vector<PairRecord>& saved) {
    std::map<std::pair<std::size_t, std::string_view>, const PairRecord*> by_key;
    for (const auto& record : saved) {
        by_key.emplace(std::make_pair(record.line_number, std::string_view(record.prompt_hash)),
                       &record);
    }
    ResumePlan plan;
    for (const auto& prompt : prompts) {
        const auto found = by_key.find({prompt.line_number, prompt.hash});
        if (found != by_key.end()) {
            plan.reused.push_back(*found->second);
        } else {
            plan.to_send.push_back(prompt);
        }
    }
    return plan;
}

// ---------------------------------------------------------------------------------------------
// The summary and the verdict

EvalParams eval_params(const routing::RouteConfig& route) {
    EvalParams params;
    params.pass_score = route.judge.pass_score;
    params.threshold = route.promotion.threshold;
    params.rollback_threshold = route.promotion.rollback_threshold;
    params.confidence = route.promotion.confidence;
    params.min_samples = route.promotion.min_samples;
    return params;
}

std::uint32_t required_samples(const EvalParams& params) {
    return std::max<std::uint32_t>(1, std::min(kEnoughSamples, params.min_samples));
}

SprtResult run_sprt(const std::vector<PairRecord>& records, const EvalParams& params) {
    // As the controller's flip test (Controller::sprt_steps), probabilities kept inside (0, 1).
    const auto clamp = [](double p) { return std::clamp(p, 1e-9, 1.0 - 1e-9); };
    const double h1 = clamp(params.threshold);
    const double h0 = clamp(params.rollback_threshold);
    const double alpha = clamp(1.0 - params.confidence);
    const double beta = alpha;
    const double pass_step = std::log(h1 / h0);
    const double fail_step = std::log((1.0 - h1) / (1.0 - h0));
    SprtResult result;
    // The gateway's first flip test exactly (Controller: Ville's bounds, k = 1), so "switch"
    // here means the live route, fed the same verdicts, would flip on the first test too.
    result.accept = accept_bound(alpha, 1);
    result.reject = std::log(beta);
    for (const auto& record : records) {
        if (record.verdict == VerdictKind::error) continue;
        result.llr += record.verdict == VerdictKind::pass ? pass_step : fail_step;
        ++result.samples_used;
        if (result.llr >= result.accept) {
            result.decision = SprtDecision::accepted;
            break;
        }
        if (result.llr <= result.reject) {
            result.decision = SprtDecision::rejected;
            break;
        }
    }
    return result;
}

std::string_view to_string(EvalVerdict verdict) {
    switch (verdict) {
        case EvalVerdict::switch_to_candidate:
            return "switch";
        case EvalVerdict::do_not_switch:
            return "do not switch";
        case EvalVerdict::inconclusive:
            return "inconclusive";
    }
    return "inconclusive";
}

std::vector<PairRecord> worst_pairs(const std::vector<PairRecord>& records, std::size_t count) {
    std::vector<PairRecord> ranked;
    for (const auto& record : records) {
        if (record.verdict != VerdictKind::error) ranked.push_back(record);
    }
    std::stable_sort(ranked.begin(), ranked.end(), [](const PairRecord& a, const PairRecord& b) {
        // No score on a pass/fail verdict = a failed candidate: the worst there is.
        const double sa = a.score.value_or(-1.0);
        const double sb = b.score.value_or(-1.0);
        return sa != sb ? sa < sb : a.line_number < b.line_number;
    });
    if (ranked.size() > count) ranked.resize(count);
    return ranked;
}

EvalSummary summarise(std::vector<PairRecord> records, const EvalParams& params) {
    EvalSummary s;
    std::stable_sort(records.begin(), records.end(),
                     [](const auto& a, const auto& b) { return a.line_number < b.line_number; });
    s.records = std::move(records);
    count_verdicts(s);
    if (s.samples > 0) {
        const auto samples = static_cast<std::uint32_t>(s.samples);
        s.pass_rate = static_cast<double>(s.passes) / static_cast<double>(s.samples);
        s.wilson_lower = wilson_lower_bound(static_cast<std::uint32_t>(s.passes), samples);
        // The interval is symmetric in pass and fail: the upper bound of the pass rate is one
        // minus the lower bound of the fail rate.
        s.wilson_upper = 1.0 - wilson_lower_bound(static_cast<std::uint32_t>(s.fails), samples);
    }
    s.sprt = run_sprt(s.records, params);
    s.required_samples = required_samples(params);
    decide(s, params);
    s.primary = summarise_side(s.records, true);
    s.candidate = summarise_side(s.records, false);
    if (s.candidate.latency_p50_ms > 0) {
        s.speedup = s.primary.latency_p50_ms / s.candidate.latency_p50_ms;
    }
    s.saving_per_1k_usd = s.primary.cost_per_1k_usd - s.candidate.cost_per_1k_usd;
    s.worst = worst_pairs(s.records, kWorstCount);
    return s;
}

int exit_code(const EvalSummary& summary) {
    if (summary.all_judging_failed()) return 2;
    return summary.verdict == EvalVerdict::switch_to_candidate ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Renderings

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
