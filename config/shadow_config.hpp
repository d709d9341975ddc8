#pragma once
/// The evaluation part of a route: how much traffic is mirrored to the candidate (`shadow:`),
/// who grades the pairs (`judge:`), and how the verdicts move traffic (`promotion:`).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "config/duration.hpp"

namespace turnout::config {

struct ShadowConfig {
    double sample_rate = 0.0;
    std::uint32_t max_inflight = 8;
    std::uint32_t queue = 256;
};

struct JudgeConfig {
    std::string provider;  ///< empty = no judge configured
    std::string model;
    std::string prompt_file;
    double pass_score = 95;
    /// Judge each pair twice, the answers in both orders; the lower score counts and a
    /// pass/fail disagreement is an error verdict. Costs two judge calls per pair.
    bool swap = false;
    /// Each answer is cut to this many bytes (with a visible marker) before the judge sees it.
    std::uint64_t max_answer_bytes = 64 * 1024;
    /// `body:` extra fields of the judge request, in the provider's dialect, set after any
    /// translation; a null value removes the field (e.g. `temperature: null`). JSON object
    /// text as for ProviderConfig::extra_body_json; "" when none.
    std::string extra_body_json;
};

enum class PromotionMode { shadow, automatic, pin_primary, pin_candidate };

struct PromotionConfig {
    PromotionMode mode = PromotionMode::shadow;
    std::uint32_t window = 100;
    std::uint32_t min_samples = 50;
    double threshold = 0.90;
    Duration hold = std::chrono::minutes(10);
    double rollback_threshold = 0.85;
    double confidence = 0.95;
    std::vector<std::uint32_t> ramp = {100};
    Duration step = std::chrono::minutes(30);
    Duration cooldown = std::chrono::hours(1);
    double shadow_after_promotion = 0.05;
};

}  // namespace turnout::config
