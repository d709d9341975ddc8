#pragma once
/// The judge's plain-C++ pieces: the prompt (the built-in "Distillation QA" template, its
/// placeholders, the fencing of the request and both answers), the judge's chat request, the
/// answer text extracted from a chat.completion or a reassembled stream, and the verdict: the
/// judge's reply parsed tolerantly, validated strictly and classified by turnout. No I/O: the
/// shadow worker sends what these functions build and feeds back what comes in.
///
/// Every input is untrusted (client requests, model answers, the judge's reply): bad JSON or
/// wrong types give an error value or a best-effort text, never a crash or an exception.
/// All functions are thread safe (they share no state).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// VerdictKind (pass, fail, error) and its to_string() belong to the controller, which
// consumes the verdicts classify() produces.
#include "shadow/controller.hpp"

namespace turnout::shadow {

// ---------------------------------------------------------------------------------------------
// The prompt

/// The built-in template (used when `judge.prompt_file` is empty): a strict senior reviewer
/// decides whether answer B (the candidate) can replace reference answer A for the request, on
/// correctness without hallucination, instruction following and code safety, and answers with
/// JSON only: `{"score": 0-100, "pass": bool, "reason": "...", "diff_summary": "..."}`.
///
/// Placeholders (a user template uses the same ones):
/// - `{{PASS_SCORE}}`: the route's `pass_score`, e.g. `95` or `97.5`;
/// - `{{BOUNDARY}}`: the per-call fence token, so the template can explain the fences;
/// - `{{REQUEST}}`, `{{ANSWER_A}}`, `{{ANSWER_B}}`: each becomes a whole fenced block (the
///   fence lines included, on lines of their own), so that no template can forget the fences.
std::string_view builtin_judge_template();

/// The template of a route's judge: the built-in one when `judge.prompt_file` is empty, else
/// that file, read bounded (a regular file of at most 16 MiB, base/bounded_file.hpp).
/// Throws std::runtime_error naming the file and why it cannot be read.
std::string load_judge_template(const config::JudgeConfig& judge);

/// Problems that make `template_text` unusable as a judge prompt, one message each: each of
/// `{{REQUEST}}`, `{{ANSWER_A}}` and `{{ANSWER_B}}` must occur exactly once, and no other
/// `{{NAME}}` than the five placeholders may occur. Empty = usable (for `turnout check` on a
/// `prompt_file`).
std::vector<std::string> check_judge_template(std::string_view template_text);

/// Lowercase hex SHA-256 (64 characters) of the template text, before any substitution: part
/// of the evidence fingerprint, so that changing the prompt starts the evidence afresh.
/// Throws std::runtime_error only if OpenSSL cannot compute a digest (called at config load).
std::string template_hash(std::string_view template_text);

/// What identifies a route's evidence: its candidate, judge, template and judge settings.
/// Changing any of these starts the evidence afresh (Controller::reconfigure). The judge's
/// newer settings join only when they differ from their defaults, so that routes that do not
/// use them keep the evidence they had.
std::string evidence_fingerprint(const config::RouteConfig& route, std::string_view template_text);

/// The same template with the two answers' positions exchanged, for the second call of
/// `judge.swap`: each answer keeps its name, its fence and its heading, so the question is
/// unchanged ("can answer B, the candidate, replace answer A, the reference?") and only the
/// order the judge reads them in differs (a position-biased judge disagrees with itself).
/// An answer's section is its placeholder with the paragraph leading up to it (the text after
/// the last blank line before it, never reaching back past another placeholder); when both
/// placeholders share a paragraph, only the placeholders are exchanged. A template without both
/// answer placeholders is returned unchanged.
std::string swapped_judge_template(std::string_view template_text);

/// Default `judge.max_answer_bytes`: the part of each answer the judge sees.
inline constexpr std::uint64_t kJudgeMaxAnswerBytes = 64 * 1024;

/// `answer` cut to at most `max_bytes` bytes at a UTF-8 character boundary, followed by the
/// line `[... truncated by turnout: N of M bytes shown]` (N bytes kept out of M), so neither
/// the judge nor a reader of the prompt mistakes a cut answer for a complete one. Returned
/// unchanged when it fits (or `max_bytes` is 0: no limit).
std::string truncate_answer(std::string_view answer, std::uint64_t max_bytes);

/// What the judge sees of one shadowed pair.
struct JudgeInput {
    /// The client's chat request. When it parses as a JSON object, the prompt shows only what
    /// defines the task (`messages`, `tools`, `tool_choice`, `parallel_tool_calls`,
    /// `response_format`, legacy `functions` / `function_call`), pretty-printed; otherwise the
    /// text as given.
    std::string request_json;
    std::string answer_a;  ///< the reference (primary) answer, e.g. from answer_text_from_openai
    std::string answer_b;  ///< the candidate's answer
    double pass_score = 95;
    /// Each answer goes into the prompt through truncate_answer with this budget (0 = whole).
    std::uint64_t max_answer_bytes = kJudgeMaxAnswerBytes;
};

/// A fresh fence token for one judge call: "TURNOUT-" and 24 hex digits (96 bits) from
/// std::random_device. The answers exist before it is drawn, so they cannot contain it except
/// by chance; render_judge_prompt neutralises it anyway.
std::string random_boundary();

/// `template_text` with every placeholder substituted in a single pass (ANSWER_A and ANSWER_B
/// cut to `input.max_answer_bytes` first, see truncate_answer) (text substituted into
/// the prompt is never scanned for placeholders again; unknown `{{NAME}}`s stay as they are).
///
/// Each of REQUEST, ANSWER_A and ANSWER_B becomes the lines
///     <<<{boundary}:NAME
///     {the content, escaped}
///     {boundary}:NAME>>>
/// where escaping makes the frame unbreakable: line breaks are normalised to "\n" (CR, CRLF,
/// U+0085, U+2028 and U+2029 too, since a model may read them as line breaks); every
/// occurrence of `boundary` is replaced by "[removed: fence text]"; and a line whose trimmed
/// text starts with `<<<` gets a backslash prepended, one whose trimmed text ends with `>>>`
/// gets a backslash appended. So inside a block no line starts with `<<<` or ends with `>>>`,
/// and the boundary occurs nowhere but in the fence lines and the template's own text.
///
/// `boundary` should come from random_boundary(); one shorter than 8 characters or with
/// characters other than [A-Za-z0-9_-] is replaced by a random one (the escaping relies on it).
std::string render_judge_prompt(std::string_view template_text, const JudgeInput& input,
                                std::string_view boundary);

// ---------------------------------------------------------------------------------------------
// The judge call

/// Default `max_tokens` of a judge call: a verdict is a short JSON object.
inline constexpr std::uint32_t kJudgeMaxTokens = 1024;

/// `max_completion_tokens` of a judge call to a reasoning model: its hidden reasoning counts
/// against this budget, and a small one ends in an empty answer with `finish_reason: length`.
inline constexpr std::uint32_t kJudgeReasoningMaxTokens = 16384;

/// True for OpenAI reasoning models, detected by name as LiteLLM does: the name after the last
/// '/' (so "openai/o3" counts), compared case-insensitively, starts with "o1", "o3" or "o4"
/// (o1, o1-mini, o3-mini, o4-mini, ...), or contains "gpt-5" but not "gpt-5-chat" (gpt-5,
/// gpt-5-mini, gpt-5.1-codex, ...; gpt-5-chat-latest is a plain chat model). These refuse
/// `temperature` other than the default and `max_tokens`.
bool is_reasoning_model(std::string_view model);

/// An OpenAI chat.completions request for the judge: `model`, one user message holding the
/// prompt, `stream` false and, for most models, `temperature` 0 and `max_tokens`
/// (`max_tokens`, default kJudgeMaxTokens). For a reasoning model (is_reasoning_model) no
/// `temperature` and `max_completion_tokens` instead, at least kJudgeReasoningMaxTokens. The
/// route's `judge.body` is applied on top by the gateway (provider dialect, after any
/// translation). The gateway sends it through its upstream client; for an `anthropic` judge
/// the adapter translates it.
std::string judge_request_body(std::string_view judge_model, std::string_view prompt,
                               std::uint32_t max_tokens = kJudgeMaxTokens);

// ---------------------------------------------------------------------------------------------
// Answers

/// The assistant's answer in a chat.completion body (choices[0].message), as the judge reads
/// it: the content (a string, or the text of content parts), a `refusal: ...` line, one
/// `tool_call name(arguments)` line per tool call (legacy `function_call` too), and a
/// `[finish_reason: length]` (or `content_filter`) line when the answer was cut off. A body
/// that is not a chat.completion is returned unchanged: the judge sees what the client saw.
std::string answer_text_from_openai(std::string_view chat_completion_body);

/// The same text for a streamed answer, from its SSE data payloads in order (the JSON after
/// `data: `; a leading `data:` is tolerated, `[DONE]` and unparsable payloads are skipped):
/// choices[0].delta.content and refusal concatenated, tool calls joined by their `index`
/// (name as last sent, argument fragments concatenated).
std::string answer_text_from_stream(std::span<const std::string> data_payloads);

// ---------------------------------------------------------------------------------------------
// The verdict

/// The judge's verdict as parsed. When `ok` is false, `error` says why and `score` is 0;
/// `reason` and `diff_summary` are filled whenever the judge's JSON had them (for the log).
struct ParsedVerdict {
    bool ok = false;
    double score = 0;                ///< in [0, 100] when ok
    std::optional<bool> judge_pass;  ///< the judge's own `pass`: recorded, never trusted
    std::string reason;              ///< at most 4 KiB (cut at a UTF-8 boundary)
    std::string diff_summary;        ///< at most 4 KiB
    std::string error;               ///< non-empty when !ok
};

/// Parses the judge's reply text. Tolerant in finding the verdict: a `<think>...</think>`
/// preamble is skipped; the verdict is a balanced `{...}` that parses as a JSON object
/// (comments, trailing commas, NaN and Infinity allowed) and has a `score` member (keys
/// matched exactly, else case-insensitively), whether the reply is bare JSON, a fenced code
/// block or prose around it; objects without `score` are searched for one inside; `pass` may
/// be a bool or "true"/"false". Strict in validating it, the verdict is an error when:
/// - the reply holds no such object, or more than one (objects inside a verdict are part of
///   it; two verdicts are ambiguous, whichever comes first);
/// - the verdict names a key twice (also "score" next to "Score"): ambiguous too;
/// - `score` is not a JSON number (a string such as "97" is refused), or not finite, or
///   outside [0, 100].
ParsedVerdict parse_judge_reply(std::string_view reply_text);

/// parse_judge_reply on the message content of the judge's chat.completion body; an error
/// verdict when the body is not a chat.completion or its message has no text content.
ParsedVerdict parse_judge_completion(std::string_view chat_completion_body);

/// The verdict of a pair judged in both orders (`judge.swap`): `as_given` from the template,
/// `swapped` from swapped_judge_template. An error when either is one, or when the two orders
/// disagree on pass/fail (score >= pass_score): a judge swayed by the order is no evidence.
/// Otherwise the verdict with the lower score (its reason and diff_summary), so the pair
/// counts only as well as its worse reading.
ParsedVerdict combine_swapped(const ParsedVerdict& as_given, const ParsedVerdict& swapped,
                              double pass_score);

/// error when !verdict.ok; pass when score >= pass_score (turnout decides, not the judge's
/// flag); fail otherwise.
VerdictKind classify(const ParsedVerdict& verdict, double pass_score);

/// True when the verdict is ok and the judge's own `pass` contradicts score >= pass_score:
/// worth a log line, never a change of the verdict.
bool judge_disagrees(const ParsedVerdict& verdict, double pass_score);

}  // namespace turnout::shadow
