#pragma once
/// `turnout eval`'s plain-C++ pieces (CONTRACT.md "Eval"): the prompts file, the record of one
/// judged pair (a `verdicts.jsonl` line and its parse, for resuming), the summary statistics
/// and the verdict, and the three renderings (the console summary, `report.md`, `scores.svg`).
/// No I/O: cli/eval.cpp sends the prompts, reads and writes the files.
///
/// The verdict rule, where the contract leaves room (checked in this order; "samples" are the
/// pass + fail verdicts, "errors" the pairs without one: a judge error or a failed primary):
/// 1. no sample at all: inconclusive (the runner exits 2: nothing was judged);
/// 2. errors above 20% of the pairs: inconclusive (the evidence is a biased subset);
/// 3. the sequential test rejected "pass rate >= threshold": do not switch (at any sample
///    count: that is what a sequential test is for);
/// 4. fewer samples than required_samples(), i.e. min(50, the route's min_samples), at least 1:
///    inconclusive;
/// 5. pass rate below threshold: do not switch;
/// 6. the sequential test accepted, or the 95% Wilson lower bound >= rollback_threshold:
///    switch;
/// 7. otherwise (pass rate at or above threshold on weak evidence): inconclusive.
/// The sequential test is the controller's first flip test (H1 p = threshold against H0 p =
/// rollback_threshold, alpha = beta = 1 - confidence, Ville's bounds: sequential_test.hpp)
/// run over the pairs in prompt-file order, judge errors skipped, stopping at the first
/// crossing of a bound (a one-off test: no restart, unlike the live controller).
///
/// All functions are thread safe (no shared state); bad input never throws.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "shadow/controller.hpp"
#include "shadow/digest.hpp"
#include "shadow/judge.hpp"

namespace turnout::shadow {

// ---------------------------------------------------------------------------------------------
// The prompts file

/// One usable line of the prompts file.
struct EvalPrompt {
    std::size_t line_number = 0;  ///< 1-based
    std::string request_json;     ///< the line's JSON object, compact
    std::string hash;             ///< `prompt_hash`: hex SHA-256 of the canonical JSON
};

/// A line that was skipped, and why.
struct PromptProblem {
    std::size_t line_number = 0;
    std::string reason;
};

struct PromptFile {
    std::vector<EvalPrompt> prompts;  ///< in file order
    std::vector<PromptProblem> problems;
};

/// Parses JSON lines. A usable line is a JSON object whose `messages` is a non-empty array of
/// objects, each with a string `role` (an OpenAI chat request body, with or without `model`).
/// Blank lines are skipped silently; a UTF-8 byte order mark and CR line ends are tolerated.
PromptFile parse_prompts(std::string_view text);

/// "FILE:LINE: reason", as printed on stderr.
std::string format_problem(std::string_view file, const PromptProblem& problem);

/// `value` serialised compactly with object members sorted by name at every level, so that
/// whitespace, member order and escapes do not change a prompt's hash. "" when not JSON.
std::string canonical_json(std::string_view json);

/// `request_json` with `model` set to `model` (the gateway then rewrites it for the target, as
/// for live traffic). Unchanged when it is not a JSON object.
std::string request_with_model(std::string_view request_json, std::string_view model);

// ---------------------------------------------------------------------------------------------
// One judged pair

/// One model's call, as recorded.
struct SideRecord {
    bool ok = false;
    std::string error;  ///< why the call failed (when !ok)
    double latency_ms = 0;
    double ttft_ms = 0;  ///< = latency_ms: the calls are not streamed
    std::uint64_t input_tokens = 0;
    std::uint64_t output_tokens = 0;
    double cost_usd = 0;

    bool operator==(const SideRecord&) const = default;
};

/// A pair as written to `verdicts.jsonl`: identified by line number and prompt hash.
struct PairRecord {
    std::size_t line_number = 0;
    std::string prompt_hash;
    std::optional<double> score;  ///< the judge's, when it gave a parsable one
    VerdictKind verdict = VerdictKind::error;
    std::string reason;
    std::string diff_summary;
    SideRecord primary;
    SideRecord candidate;

    /// Both sides answered: the judge was (or is to be) called.
    bool judged() const { return primary.ok && candidate.ok; }
    bool operator==(const PairRecord&) const = default;
};

/// Settles `record`'s verdict from its sides and, when both answered, the judge's `verdict`
/// (parse_judge_completion's, or an error verdict saying why the call failed): a failed
/// primary is an error (no reference: no evidence), a failed candidate a fail, otherwise the
/// judge's classification against `pass_score`. `verdict` is ignored unless judged().
void settle_pair(PairRecord& record, const ParsedVerdict& verdict, double pass_score);

/// One `verdicts.jsonl` line (no line break): line_number, prompt_hash, score (number or
/// null), pass, verdict, reason, diff_summary, then primary_ / candidate_ ok, error,
/// latency_ms, ttft_ms, input_tokens, output_tokens, cost_usd.
std::string to_json_line(const PairRecord& record);

/// The parse of a to_json_line line; nullopt for anything else (a truncated last line, say).
std::optional<PairRecord> parse_record(std::string_view line);

/// What an earlier run left: the records, and the line numbers of lines that did not parse.
struct SavedVerdicts {
    std::vector<PairRecord> records;
    std::vector<std::size_t> bad_lines;
};
SavedVerdicts parse_verdicts_file(std::string_view text);

/// The prompts split into those an earlier run judged (same line number and prompt hash; the
/// first record wins) and those still to send, both in file order.
struct ResumePlan {
    std::vector<PairRecord> reused;
    std::vector<EvalPrompt> to_send;
};
ResumePlan plan_resume(const std::vector<EvalPrompt>& prompts,
                       const std::vector<PairRecord>& saved);

// ---------------------------------------------------------------------------------------------
// The summary and the verdict

/// The route's numbers the verdict uses.
struct EvalParams {
    double pass_score = 95;
    double threshold = 0.90;
    double rollback_threshold = 0.85;
    double confidence = 0.95;
    std::uint32_t min_samples = 50;
};
EvalParams eval_params(const config::RouteConfig& route);

/// Samples the verdict needs: min(50, min_samples), at least 1.
std::uint32_t required_samples(const EvalParams& params);

/// Wald's SPRT over the pairs in order, stopped at the first crossing.
struct SprtResult {
    SprtDecision decision = SprtDecision::undecided;
    double llr = 0;                ///< where the test stopped (or after the last pair)
    double accept = 0;             ///< accept_bound(alpha, 1): the controller's first flip test
    double reject = 0;             ///< ln(beta)
    std::size_t samples_used = 0;  ///< pass/fail verdicts read when it stopped
};
SprtResult run_sprt(const std::vector<PairRecord>& records, const EvalParams& params);

enum class EvalVerdict { switch_to_candidate, do_not_switch, inconclusive };
/// "switch", "do not switch", "inconclusive".
std::string_view to_string(EvalVerdict verdict);

/// One model's figures over the calls that succeeded (failed calls have no meaningful latency).
struct SideSummary {
    std::size_t ok_calls = 0;
    double latency_p50_ms = 0;
    double ttft_p50_ms = 0;
    std::uint64_t input_tokens = 0;
    std::uint64_t output_tokens = 0;
    double cost_usd = 0;
    double cost_per_1k_usd = 0;  ///< mean cost of a successful call, times 1,000
};

struct EvalSummary {
    std::vector<PairRecord> records;  ///< every pair, by line number
    std::size_t pairs = 0;
    std::size_t samples = 0;  ///< passes + fails
    std::size_t passes = 0;
    std::size_t fails = 0;
    std::size_t errors = 0;          ///< pairs without a verdict
    std::size_t judge_calls = 0;     ///< pairs where both sides answered
    std::size_t judge_failures = 0;  ///< ... and the judge gave no verdict
    double pass_rate = 0;            ///< passes / samples
    double wilson_lower = 0;         ///< 95% Wilson interval of pass_rate
    double wilson_upper = 0;
    SprtResult sprt;
    std::uint32_t required_samples = 0;
    EvalVerdict verdict = EvalVerdict::inconclusive;
    std::string why;  ///< one sentence with the numbers behind the verdict
    SideSummary primary;
    SideSummary candidate;
    double speedup = 0;             ///< primary / candidate median latency; 0 when unknown
    double saving_per_1k_usd = 0;   ///< primary minus candidate cost per 1,000 requests
    std::vector<PairRecord> worst;  ///< up to five judged pairs, lowest score first

    /// Nothing was judged: every judge call failed, or no pair got a verdict at all.
    bool all_judging_failed() const {
        return samples == 0 || (judge_calls > 0 && judge_failures == judge_calls);
    }
};

/// The summary of `records` (any order; duplicates are the caller's business).
EvalSummary summarise(std::vector<PairRecord> records, const EvalParams& params);

/// 0 for switch, 2 when all_judging_failed(), 1 otherwise.
int exit_code(const EvalSummary& summary);

/// The five worst pairs: a failed candidate first (no score), then by score, then by line;
/// judge errors are not ranked (they have no verdict).
std::vector<PairRecord> worst_pairs(const std::vector<PairRecord>& records, std::size_t count = 5);

// ---------------------------------------------------------------------------------------------
// Renderings

/// What the renderings say about the run besides the numbers.
struct ReportContext {
    std::string route;
    std::string primary;    ///< "provider/model"
    std::string candidate;  ///< "provider/model"
    std::string judge;      ///< "provider/model"
    std::string prompts_file;
    std::string out_dir;
    std::size_t broken_lines = 0;
    std::size_t reused = 0;  ///< pairs taken from an earlier run's verdicts.jsonl
    std::size_t sent = 0;    ///< pairs evaluated by this run
    EvalParams params;
};

/// The console summary (stdout): plain text lines.
std::string render_summary(const EvalSummary& summary, const ReportContext& context);

/// `report.md`: the summary, the five worst pairs and a table of every pair.
std::string render_report(const EvalSummary& summary, const ReportContext& context);

/// `scores.svg`: a histogram of the scores in bins of 5 (100 in the last) with a vertical
/// line (id `pass-line`) at pass_score, and both models' median latency as two labelled bars.
std::string render_svg(const EvalSummary& summary, const ReportContext& context);

/// Progress of a run.
struct EvalProgress {
    std::size_t done = 0;
    std::size_t total = 0;
    std::size_t passes = 0;
    std::size_t fails = 0;
    std::size_t errors = 0;
    double elapsed_s = 0;
};
/// "12/60 pairs, pass 11/12 (91.7%), 0 errors, ETA 14s".
std::string progress_text(const EvalProgress& progress);
/// Without a terminal, a progress line is printed when this is true: every ~10% and at the end.
bool progress_milestone(std::size_t done, std::size_t total);

}  // namespace turnout::shadow
