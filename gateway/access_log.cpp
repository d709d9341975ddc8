#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "base/logging.hpp"
#include "gateway/request_record.hpp"

namespace turnout::gateway {

std::string_view RequestRecord::target_model() const {
    const auto slash = target.find('/');
    return slash == std::string::npos ? std::string_view(target)
                                      : std::string_view(target).substr(slash + 1);
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

RequestTimes request_times(const RequestRecord& record, Clock::time_point now) {
    RequestTimes times;
    times.duration = seconds_between(record.start, now);
    if (record.first_byte) times.ttfb = seconds_between(record.start, *record.first_byte);
    times.overhead =
        std::max(0.0, times.duration - std::chrono::duration<double>(record.upstream_time).count());
    return times;
}

void write_access_log(const RequestRecord& record, Listener listener, const RequestTimes& times) {
    base::log_event(
        base::access_log(), spdlog::level::info, "request",
        {{"request_id", record.request_id},
         {"listener", listener == Listener::api ? "api" : "admin"},
         {"method", record.method},
         {"path", record.path},
         {"key", record.key_name},
         {"route", record.route},
         {"target", record.target},
         {"status", static_cast<std::int64_t>(record.status)},
         {"attempts", static_cast<std::int64_t>(record.attempts)},
         {"bytes_in", static_cast<std::int64_t>(record.bytes_in)},
         {"bytes_out", static_cast<std::int64_t>(record.bytes_out)},
         {"input_tokens", static_cast<std::int64_t>(record.input_tokens)},
         {"output_tokens", static_cast<std::int64_t>(record.output_tokens)},
         {"duration_ms", times.duration * 1000.0},
         {"ttfb_ms", times.ttfb * 1000.0},
         {"overhead_ms", times.overhead * 1000.0},
         {"stream", record.stream},
         {"client_gone", record.client_gone},
         {"upstream_failure", record.upstream_failure},
         {"speed", record.speed ? std::string_view(*record.speed) : std::string_view()}});
}

std::string new_request_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return fmt::format("{:016x}{:016x}", rng(), rng());
}

bool acceptable_request_id(std::string_view id) {
    if (id.empty() || id.size() > 128) return false;
    return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace turnout::gateway
