// The judge's reply: the one verdict found in its text (tolerantly) and validated (strictly).
#include <rapidjson/document.h>

#include <cmath>

#include "base/json_input.hpp"
#include "shadow/chat_completion.hpp"
#include "shadow/json_util.hpp"
#include "shadow/judge.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;
using rapidjson::Document;
using rapidjson::Value;

// Judges write JSON loosely (the seed's own example carries a `//` comment); a key named twice
// is still refused: which of the two would be the score?
constexpr base::JsonInputOptions kVerdictJson{.lenient = true};
// Bounds the verdict search (each candidate `{` costs a scan of the rest of the reply): a
// judge answers in at most a few KiB, so these limits are never reached by a real verdict.
constexpr std::size_t kMaxReplyBytes = 256 * 1024;
constexpr std::size_t kMaxCandidates = 64;
// reason and diff_summary go to the durable verdict log: bounded.
constexpr std::size_t kMaxTextBytes = 4096;
// Reply text quoted in an error message is cut here.
constexpr std::size_t kMaxQuotedBytes = 200;

/// Index of the `}` closing the `{` at `open`, skipping braces inside JSON strings; npos when
/// the object never closes.
std::size_t matching_brace(std::string_view text, std::size_t open) {
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = open; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{') {
            ++depth;
        } else if (c == '}' && --depth == 0) {
            return i;
        }
    }
    return std::string_view::npos;
}

/// reason / diff_summary: a string, or any other value as JSON text; bounded either way.
std::string verdict_text(const Value* value) {
    if (value == nullptr || value->IsNull()) return {};
    if (value->IsString()) return shorten(view(*value), kMaxTextBytes);
    return shorten(json_text(*value), kMaxTextBytes);
}

std::optional<bool> pass_flag(const Value* value) {
    if (value == nullptr) return {};
    if (value->IsBool()) return value->GetBool();
    if (value->IsString()) {
        if (iequals(view(*value), "true")) return true;
        if (iequals(view(*value), "false")) return false;
    }
    return {};
}

/// Members of `object` named `name` in any case ("score" and "Score" are one key to a reader).
std::size_t count_ci(const Value& object, std::string_view name) {
    std::size_t count = 0;
    for (const auto& entry : object.GetObject()) {
        if (entry.name.IsString() && iequals(view(entry.name), name)) ++count;
    }
    return count;
}

/// The verdict held by a JSON object that has a score member.
ParsedVerdict verdict_from(const Value& object, const Value& score) {
    ParsedVerdict verdict;
    verdict.judge_pass = pass_flag(member_ci(object, "pass"));
    verdict.reason = verdict_text(member_ci(object, "reason"));
    verdict.diff_summary = verdict_text(member_ci(object, "diff_summary"));
    for (const std::string_view key : {"score", "pass"}) {
        if (count_ci(object, key) > 1) {
            verdict.error = "the judge's verdict names \"" + std::string(key) + "\" twice";
            return verdict;
        }
    }
    std::optional<double> value;
    // A number, nothing else: "97" may be a score, or "97 of 120 tests", or a rank.
    if (score.IsNumber()) value = score.GetDouble();
    if (!value) {
        verdict.error = "the judge's score is not a number: " + shorten(json_text(score), 64);
    } else if (!std::isfinite(*value)) {
        verdict.error = "the judge's score is not a finite number: " + shortest_number(*value);
    } else if (*value < 0 || *value > 100) {
        verdict.error = "the judge's score " + shortest_number(*value) + " is outside [0, 100]";
    } else {
        verdict.ok = true;
        verdict.score = *value;
    }
    return verdict;
}

/// The text after a reasoning model's `<think>...</think>` preamble, whose drafts may hold
/// JSON-looking text that is not the verdict.
std::string_view after_reasoning(std::string_view text) {
    constexpr std::string_view kEndThink = "</think>";
    const std::size_t at = text.rfind(kEndThink);
    return at == std::string_view::npos ? text : text.substr(at + kEndThink.size());
}

ParsedVerdict error_verdict(std::string error) {
    ParsedVerdict verdict;
    verdict.error = std::move(error);
    return verdict;
}

}  // namespace

ParsedVerdict parse_judge_reply(std::string_view reply_text) {
    const std::string_view reply = utf8_prefix(after_reasoning(reply_text), kMaxReplyBytes);
    if (trim(reply).empty()) return error_verdict("the judge's reply is empty");
    bool saw_object = false;
    std::size_t candidates = 0;
    std::size_t verdicts = 0;
    ParsedVerdict found;
    std::size_t open = reply.find('{');
    for (; open != std::string_view::npos && candidates < kMaxCandidates;
         open = reply.find('{', open)) {
        ++candidates;
        const std::size_t close = matching_brace(reply, open);
        const std::string_view text = close == std::string_view::npos
                                          ? std::string_view{}
                                          : reply.substr(open, close + 1 - open);
        ++open;
        if (text.empty()) continue;
        Document doc;
        const base::JsonInputResult parsed = base::parse_json_input(text, doc, kVerdictJson);
        if (parsed.error == base::JsonInputError::duplicate_key) {
            // Refused, but was it a verdict? Read it again only to tell.
            base::JsonInputOptions loose = kVerdictJson;
            loose.reject_duplicate_keys = false;
            if (!base::parse_json_input(text, doc, loose) || !doc.IsObject()) continue;
            saw_object = true;
            if (member_ci(doc, "score") == nullptr) continue;
            found = error_verdict("the judge's verdict names a key twice");
        } else if (parsed && doc.IsObject()) {
            saw_object = true;
            const Value* score = member_ci(doc, "score");
            if (score == nullptr) continue;  // a wrapper, e.g. {"verdict": {...}}: look inside
            found = verdict_from(doc, *score);
        } else {
            continue;
        }
        // Objects inside a verdict belong to it: the search goes on after its end.
        ++verdicts;
        open = close + 1;
    }
    if (verdicts > 1) {
        return error_verdict("the judge's reply holds " + std::to_string(verdicts) +
                             " verdicts; exactly one is expected");
    }
    if (verdicts == 1 && open == std::string_view::npos) return found;
    const std::string quoted = "\"" + shorten(trim(reply), kMaxQuotedBytes) + "\"";
    if (verdicts == 1) {
        // The search stopped early: a second verdict may follow, unseen.
        return error_verdict(
            "the judge's reply holds too many JSON objects to find its one "
            "verdict: " +
            quoted);
    }
    return error_verdict(saw_object ? "the judge's JSON has no \"score\": " + quoted
                                    : "the judge's reply holds no JSON verdict: " + quoted);
}

ParsedVerdict parse_judge_completion(std::string_view chat_completion_body) {
    const ChatCompletion completion(chat_completion_body);
    if (!completion.is_object()) {
        return error_verdict("the judge's response is not a JSON chat.completion");
    }
    const Value* message = completion.message();
    if (message == nullptr) return error_verdict("the judge's response has no choices[0].message");
    const std::string content = content_text(member(*message, "content"));
    if (trim(content).empty()) {
        const std::string_view refusal = string_member(*message, "refusal");
        return error_verdict(refusal.empty()
                                 ? "the judge's message has no text content"
                                 : "the judge refused: " + shorten(refusal, kMaxQuotedBytes));
    }
    return parse_judge_reply(content);
}

}  // namespace turnout::shadow
