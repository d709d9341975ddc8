// `turnout eval`'s summary: the counts, the Wilson interval and the one-off sequential test,
// the verdict with the numbers behind it, both models' latency and cost, the worst pairs.
#include <algorithm>
#include <utility>

#include "shadow/eval_report.hpp"
#include "shadow/eval_text.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;

/// The rule's sample floor (the seed's "50-100 samples") and error ceiling.
constexpr std::uint32_t kEnoughSamples = 50;
constexpr double kMaxErrorShare = 0.20;
constexpr std::size_t kWorstCount = 5;

double median(std::vector<double> values) {
    if (values.empty()) return 0.0;
    std::sort(values.begin(), values.end());
    const std::size_t mid = values.size() / 2;
    return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2.0;
}

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

}  // namespace

EvalParams eval_params(const config::RouteConfig& route) {
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
    // The controller's flip test: the same increments and bounds.
    const SprtSteps steps =
        sprt_steps(params.threshold, params.rollback_threshold, params.confidence);
    SprtResult result;
    // The gateway's first flip test exactly (Controller: Ville's bounds, k = 1), so "switch"
    // here means the live route, fed the same verdicts, would flip on the first test too.
    result.accept = accept_bound(steps.alpha, 1);
    result.reject = steps.reject;
    for (const auto& record : records) {
        if (record.verdict == VerdictKind::error) continue;
        result.llr += record.verdict == VerdictKind::pass ? steps.pass : steps.fail;
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

}  // namespace turnout::shadow
