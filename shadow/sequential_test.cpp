#include "shadow/sequential_test.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

namespace turnout::shadow {
namespace {

// Keeping every probability inside (0, 1) keeps every logarithm below finite.
double clamp_probability(double p) { return std::clamp(p, 1e-9, 1.0 - 1e-9); }

}  // namespace

SprtSteps sprt_steps(double threshold, double rollback_threshold, double confidence) {
    const double h1 = clamp_probability(threshold);
    const double h0 = clamp_probability(rollback_threshold);
    const double alpha = error_budget(confidence);
    const double beta = alpha;
    SprtSteps steps;
    steps.pass = std::log(h1 / h0);
    steps.fail = std::log((1.0 - h1) / (1.0 - h0));
    steps.alpha = alpha;
    // Ville's bound, not Wald's approximation ln(beta / (1 - alpha)): under H1 a test rejects
    // (and the next one starts) with probability at most beta.
    steps.reject = std::log(beta);
    return steps;
}

SprtSteps sprt_steps(const config::PromotionConfig& promotion) {
    return sprt_steps(promotion.threshold, promotion.rollback_threshold, promotion.confidence);
}

double error_budget(double confidence) { return clamp_probability(1.0 - confidence); }

double test_budget(double alpha, std::uint64_t k) {
    const double kk = static_cast<double>(std::max<std::uint64_t>(k, 1));
    return 6.0 * alpha / (std::numbers::pi * std::numbers::pi * kk * kk);
}

double accept_bound(double alpha, std::uint64_t k) { return -std::log(test_budget(alpha, k)); }

double budget_after(double alpha, std::uint64_t k) {
    // sum_{j > k} 1 / j^2: 32 terms, then sum_{j > M} 1 / j^2 by its asymptotic series
    // 1/M - 1/(2M^2) + 1/(6M^3) - 1/(30M^5) + ..., cut after a positive term: an upper bound,
    // within 1/(30 M^5) of the exact sum.
    constexpr std::uint64_t kTerms = 32;
    double tail = 0.0;
    for (std::uint64_t j = k + kTerms; j > k; --j) {
        const double jj = static_cast<double>(j);
        tail += 1.0 / (jj * jj);
    }
    const double m = static_cast<double>(k + kTerms);
    tail += 1.0 / m - 1.0 / (2.0 * m * m) + 1.0 / (6.0 * m * m * m);
    return 6.0 * alpha / (std::numbers::pi * std::numbers::pi) * tail;
}

std::string guarantee(const config::PromotionConfig& promotion) {
    const double alpha = error_budget(promotion.confidence);
    char text[160];
    std::snprintf(text, sizeof text,
                  "false switch at most %.3g%% at any horizon (pass rate <= %.3g), false "
                  "rollback at most %.3g%% (>= %.3g)",
                  100.0 * alpha, promotion.rollback_threshold, 100.0 * alpha, promotion.threshold);
    return text;
}

std::uint64_t fewest_to_reject(double reject, double step) {
    if (!(step < 0.0)) return 1;
    const double n = std::ceil(reject / step);
    return n >= 1.0 && n < 1e12 ? static_cast<std::uint64_t>(n) : 1;
}

double wilson_lower_bound(std::uint32_t passes, std::uint32_t samples, double z) {
    if (samples == 0) return 0.0;
    const double n = samples;
    const double p = std::min<double>(passes, samples) / n;
    const double z2 = z * z;
    const double centre = p + z2 / (2.0 * n);
    const double margin = z * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n));
    return std::max(0.0, (centre - margin) / (1.0 + z2 / n));
}

}  // namespace turnout::shadow
