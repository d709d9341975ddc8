// `turnout eval`'s record of one judged pair: its verdict settled, its `verdicts.jsonl` line
// written and read back, and the resumption of an earlier run from those lines.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <map>
#include <utility>

#include "shadow/controller_names.hpp"
#include "shadow/eval_report.hpp"
#include "shadow/eval_text.hpp"
#include "shadow/json_util.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;
using rapidjson::Value;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// SideRecord's members with their JSON names (after the side's prefix, "primary_" or
/// "candidate_"), in the order they are written.
template <typename S, typename Visit>
void side_fields(S& side, Visit&& visit) {
    visit("ok", side.ok);
    visit("error", side.error);
    visit("latency_ms", side.latency_ms);
    visit("ttft_ms", side.ttft_ms);
    visit("input_tokens", side.input_tokens);
    visit("output_tokens", side.output_tokens);
    visit("cost_usd", side.cost_usd);
}

void write_value(Writer& writer, bool value) { writer.Bool(value); }
void write_value(Writer& writer, const std::string& value) { writer.String(value); }
void write_value(Writer& writer, double value) { writer.Double(finite(value)); }
void write_value(Writer& writer, std::uint64_t value) { writer.Uint64(value); }

// A member absent or of another type reads as false, "", 0.
void read_value(const Value* value, bool& out) {
    out = value != nullptr && value->IsBool() && value->GetBool();
}
void read_value(const Value* value, std::string& out) {
    out = value != nullptr && value->IsString() ? std::string(view(*value)) : std::string();
}
void read_value(const Value* value, double& out) {
    out = value != nullptr && value->IsNumber() ? finite(value->GetDouble()) : 0.0;
}
void read_value(const Value* value, std::uint64_t& out) {
    out = value != nullptr && value->IsUint64() ? value->GetUint64() : 0;
}

void write_side(Writer& writer, const std::string& prefix, const SideRecord& side) {
    side_fields(side, [&](std::string_view name, const auto& value) {
        const std::string key = prefix + std::string(name);
        writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()), true);
        write_value(writer, value);
    });
}

SideRecord read_side(const Value& object, const std::string& prefix) {
    SideRecord side;
    side_fields(side, [&](std::string_view name, auto& value) {
        read_value(member(object, prefix + std::string(name)), value);
    });
    return side;
}

}  // namespace

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
    if (!parse_eval_json(line, document) || !document.IsObject()) return std::nullopt;
    const auto* number = member(document, "line_number");
    const auto* score = member(document, "score");
    const auto verdict = from_name(string_member(document, "verdict"), kVerdictKinds);
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
    for_each_line(text, [&saved](std::size_t line_number, std::string_view line) {
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
        if (auto record = parse_record(line)) {
            saved.records.push_back(std::move(*record));
        } else {
            saved.bad_lines.push_back(line_number);
        }
    });
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

}  // namespace turnout::shadow
