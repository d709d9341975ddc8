#pragma once
/// One route (an entry of `routes:`): what it matches, which upstream models serve it, how
/// failures are retried, and its shadow evaluation (shadow_config.hpp).

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/duration.hpp"
#include "config/shadow_config.hpp"

namespace turnout::config {

/// One upstream model. The same shape is used for `primary`, `candidate`, `targets` and
/// `fallbacks`. Build it member by member: GCC's -Wmissing-field-initializers (on with -Wextra)
/// rejects a brace initialiser that leaves out the later members.
struct TargetConfig {
    std::string provider;
    std::string model;
    std::uint32_t weight = 1;  ///< only meaningful inside `targets`
    /// Extra upstream headers for this target, on top of (and overriding, by case-insensitive
    /// name) the provider's `headers`; names as written. E.g. `anthropic-beta` for fast mode.
    std::map<std::string, std::string> headers;
    /// Extra body fields for this target, on top of (and overriding, field by field at the top
    /// level) the provider's; JSON object text, "" when none. Same format as
    /// ProviderConfig::extra_body_json.
    std::string extra_body_json;

    /// Same upstream request: provider, model, headers and body (the weight is not compared).
    bool same_upstream(const TargetConfig& other) const {
        return provider == other.provider && model == other.model && headers == other.headers &&
               extra_body_json == other.extra_body_json;
    }
};

struct MatchConfig {
    std::string model;                           ///< exact or glob; empty = any
    std::map<std::string, std::string> headers;  ///< lower-cased names; values may be globs
    std::vector<std::string> keys;               ///< client key names; empty = any
};

struct RetryConfig {
    std::uint32_t attempts = 0;  ///< extra attempts per target
    Duration backoff = std::chrono::milliseconds(100);
};

struct RouteConfig {
    std::string name;
    MatchConfig match;
    std::optional<TargetConfig> primary;
    std::optional<TargetConfig> candidate;
    std::vector<TargetConfig> targets;  ///< weighted split instead of primary
    std::vector<TargetConfig> fallbacks;
    RetryConfig retries;
    Duration timeout = std::chrono::seconds(60);  ///< bounds the whole request
    ShadowConfig shadow;
    JudgeConfig judge;
    PromotionConfig promotion;
};

}  // namespace turnout::config
