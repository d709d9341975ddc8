#pragma once
/// The whole turnout configuration as plain typed structs (CONTRACT.md, "Configuration").
/// Defaults live in member initialisers; no YAML type leaves the loader (config_loader.hpp).
/// A validated Config is shared as std::shared_ptr<const Config> and never mutated.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace turnout::routing {

using Duration = std::chrono::milliseconds;

struct AdminConfig {
    std::string listen = "127.0.0.1:9090";
    std::string token_env;  ///< empty = /admin/* needs no token
};

struct StateConfig {
    std::string path = "./turnout-state";
    std::string url;  ///< redis://... (shared state); empty = local disk at `path`
};

struct LimitsConfig {
    std::uint64_t max_body_bytes = 4ull << 20;
    std::uint64_t max_header_bytes = 64ull << 10;
    Duration client_timeout = std::chrono::seconds(30);
    Duration keepalive_timeout = std::chrono::seconds(60);
    std::uint32_t max_connections = 10000;
    /// High-water mark of API requests in flight (streams included) across the process;
    /// beyond it a new request gets 503 + Retry-After at once. 0 = 90% of max_connections,
    /// so the last connections get a fast answer instead of a wait.
    std::uint32_t max_inflight = 0;
    Duration drain_timeout = std::chrono::seconds(10);  ///< turnout extension: SIGTERM drain deadline
};

struct LogConfig {
    std::string level = "info";  ///< trace | debug | info | warn | error
    std::string format = "json";  ///< json | text
};

struct ClientKeyConfig {
    std::string name;
    std::string key_env;
};

enum class ProviderKind { openai, anthropic };

struct PriceConfig {
    double input_per_mtok = 0.0;
    double output_per_mtok = 0.0;
};

/// USD for `input` and `output` tokens at `price` (dollars per million tokens).
inline double cost_usd(const PriceConfig& price, std::uint64_t input, std::uint64_t output) {
    return (static_cast<double>(input) * price.input_per_mtok +
            static_cast<double>(output) * price.output_per_mtok) /
           1e6;
}

/// base_url split once at load time so the data plane never parses URLs.
struct UpstreamAddress {
    bool tls = false;
    std::string host;       ///< without brackets for IPv6
    std::uint16_t port = 0;  ///< 443 / 80 when the URL gives none
    std::string base_path;  ///< no trailing slash; "" for the root
};

/// Consecutive live failures (connection, TLS, timeout, reset, protocol, 5xx) open the
/// provider's circuit for `cooldown`; then one request probes it (half-open). Shadow and judge
/// calls do not feed it. `failures: 0` turns it off.
struct CircuitBreakerConfig {
    std::uint32_t failures = 5;
    Duration cooldown = std::chrono::seconds(30);
};

struct ProviderConfig {
    std::string name;
    ProviderKind kind = ProviderKind::openai;
    std::string base_url;
    UpstreamAddress address;
    std::string api_key_env;  ///< empty = no key (local servers)
    Duration timeout = std::chrono::seconds(120);          ///< hard deadline of one upstream request
    Duration connect_timeout = std::chrono::seconds(10);   ///< extension: TCP + TLS handshake
    Duration first_byte_timeout = std::chrono::seconds(60);  ///< extension: request sent -> response head
    Duration stream_idle_timeout = std::chrono::seconds(60);  ///< extension: gap between stream reads
    std::uint32_t max_connections = 64;
    std::map<std::string, std::string> headers;  ///< extra upstream headers, names as written
    /// Extra fields for every upstream request body (e.g. Anthropic's fast mode `speed: fast`),
    /// as the text of one JSON object; "" when the YAML `body` is absent or has no fields.
    std::string extra_body_json;
    /// `max_tokens` sent to an `anthropic` provider when the client's request has none (the
    /// Messages API requires it; OpenAI's chat API does not).
    std::uint32_t max_tokens_default = 4096;
    PriceConfig price;
    std::string ca_file;  ///< extra trust anchor (PEM) for private CAs; system store always used
    bool tls_verify = true;  ///< extension; false only for local testing, logged as a warning
    CircuitBreakerConfig circuit_breaker;
};

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
    std::string model;  ///< exact or glob; empty = any
    std::map<std::string, std::string> headers;  ///< lower-cased names; values may be globs
    std::vector<std::string> keys;  ///< client key names; empty = any
};

struct RetryConfig {
    std::uint32_t attempts = 0;  ///< extra attempts per target
    Duration backoff = std::chrono::milliseconds(100);
};

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

struct Config {
    std::string source_path;  ///< the file as given on the command line
    std::string listen = "0.0.0.0:8080";
    AdminConfig admin;
    StateConfig state;
    LimitsConfig limits;
    LogConfig log;
    std::vector<ClientKeyConfig> keys;
    std::vector<ProviderConfig> providers;  ///< in file order
    std::vector<RouteConfig> routes;        ///< first match wins

    const ProviderConfig* find_provider(std::string_view name) const;
};

}  // namespace turnout::routing
