// A verdict read in both orders combined (`judge.swap`), and a verdict's classification.
#include "shadow/judge.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {

using detail::shortest_number;

ParsedVerdict combine_swapped(const ParsedVerdict& as_given, const ParsedVerdict& swapped,
                              double pass_score) {
    if (!as_given.ok || !swapped.ok) {
        ParsedVerdict failed = !as_given.ok ? as_given : swapped;
        failed.ok = false;
        failed.score = 0;
        failed.error =
            (!as_given.ok ? "in the given order: " : "in the swapped order: ") + failed.error;
        return failed;
    }
    if ((as_given.score >= pass_score) != (swapped.score >= pass_score)) {
        ParsedVerdict split = as_given.score <= swapped.score ? as_given : swapped;
        split.ok = false;
        split.score = 0;
        split.error = "the judge disagrees with itself when the answers swap places: score " +
                      shortest_number(as_given.score) + " in the given order, " +
                      shortest_number(swapped.score) + " swapped (pass_score " +
                      shortest_number(pass_score) + ")";
        return split;
    }
    return as_given.score <= swapped.score ? as_given : swapped;
}

VerdictKind classify(const ParsedVerdict& verdict, double pass_score) {
    if (!verdict.ok) return VerdictKind::error;
    return verdict.score >= pass_score ? VerdictKind::pass : VerdictKind::fail;
}

bool judge_disagrees(const ParsedVerdict& verdict, double pass_score) {
    return verdict.ok && verdict.judge_pass.has_value() &&
           *verdict.judge_pass != (verdict.score >= pass_score);
}

}  // namespace turnout::shadow
