#pragma once
/// The arithmetic of the sequential tests (see controller.hpp for how the controller runs
/// them): the SPRT increments and rejection bound, the any-horizon error budget (the k-th
/// test's share, its acceptance bound, what the later tests may still spend), and the Wilson
/// bound shown next to them. Plain functions without state, shared by the controller, `turnout
/// eval` (its one-off first test) and `turnout explain`.

#include <cstdint>
#include <string>

#include "config/config.hpp"

namespace turnout::shadow {

/// The flip test: a sequential probability ratio test of H1 p = threshold against H0 p =
/// rollback_threshold, with alpha = beta = 1 - confidence, every probability kept inside
/// (0, 1) (the loader allows threshold 1 and rollback_threshold 0; a single fail then simply
/// weighs a lot). The rollback test is the same with each increment's sign changed.
struct SprtSteps {
    double pass = 0.0;    ///< increment per pass (> 0 when threshold > rollback_threshold)
    double fail = 0.0;    ///< increment per fail (< 0 then)
    double alpha = 0.0;   ///< the error budget of all tests together
    double reject = 0.0;  ///< ln(beta): Ville's bound, not Wald's ln(beta / (1 - alpha))
};
SprtSteps sprt_steps(double threshold, double rollback_threshold, double confidence);
SprtSteps sprt_steps(const config::PromotionConfig& promotion);

/// 1 - confidence, kept inside (0, 1): the error budget alpha (= beta) of all tests together.
double error_budget(double confidence);

/// The k-th sequential test's share of the error budget `alpha` (k = 1, 2, ...):
/// 6 alpha / (pi^2 k^2), so that the shares of all tests sum to alpha.
double test_budget(double alpha, std::uint64_t k);
/// The k-th test's acceptance bound on the log-likelihood ratio: ln(1 / test_budget(alpha, k)).
double accept_bound(double alpha, std::uint64_t k);
/// What the tests after the k-th may still spend: alpha minus the shares of tests 1..k (an
/// upper bound, within 1e-7 of it relatively).
double budget_after(double alpha, std::uint64_t k);
/// The route's promise in one line, e.g. "false switch at most 5% at any horizon".
std::string guarantee(const config::PromotionConfig& promotion);

/// Verdicts of increment `step` (negative) that take a test from 0 to `reject`: the fewest a
/// rejection takes. 1 when `step` is not negative or the count is absurd (1e12 or more).
std::uint64_t fewest_to_reject(double reject, double step);

/// The 95% Wilson score lower bound of `passes` out of `samples`; 0 when samples is 0.
double wilson_lower_bound(std::uint32_t passes, std::uint32_t samples,
                          double z = 1.959963984540054);

}  // namespace turnout::shadow
