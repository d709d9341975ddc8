#pragma once
/// What one request came to, gathered as it runs, for the access log, the metrics and the
/// x-turnout-* headers. Plain C++: no Beast.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::metrics {
class TargetMetrics;
}

namespace turnout::gateway {

using Clock = std::chrono::steady_clock;

enum class Listener { api, admin };

struct RequestRecord {
    Clock::time_point start = Clock::now();
    std::optional<Clock::time_point> first_byte;
    std::string request_id;
    bool request_id_from_client = false;
    std::string method;
    std::string path;
    std::string route;
    std::string target;
    std::string key_name;
    unsigned status = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t input_tokens = 0;
    std::uint64_t output_tokens = 0;
    std::optional<std::string> speed;  ///< Anthropic fast mode, from usage.speed
    Clock::duration upstream_time{};
    unsigned attempts = 0;
    bool stream = false;
    bool include_usage = false;
    bool serving_candidate = false;
    std::string decided_target;    ///< provider/model the route chose (a fallback may answer)
    bool capture = false;          ///< sampled for the shadow: keep the answer for the judge
    bool capture_skipped = false;  ///< sampled, but the answer was too big to keep (counted)
    std::string captured_body;
    std::vector<std::string> captured_payloads;
    std::size_t captured_bytes = 0;
    bool client_gone = false;
    std::string_view upstream_failure;
    std::shared_ptr<metrics::TargetMetrics> metrics;

    /// The model part of `target` ("provider/model").
    std::string_view target_model() const;
};

double seconds_between(Clock::time_point from, Clock::time_point to);

/// The request's durations in seconds; ttfb is -1 when nothing was sent.
struct RequestTimes {
    double duration = 0;
    double ttfb = -1;
    double overhead = 0;  ///< the gateway's own share: duration minus upstream time
};
RequestTimes request_times(const RequestRecord& record, Clock::time_point now);

/// The request's one access-log line.
void write_access_log(const RequestRecord& record, Listener listener, const RequestTimes& times);

/// A fresh request id (128 random bits in hex).
std::string new_request_id();
/// A client's x-request-id is kept when it is short and printable (it reaches logs).
bool acceptable_request_id(std::string_view id);

}  // namespace turnout::gateway
