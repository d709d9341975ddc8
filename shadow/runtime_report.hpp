#pragma once
/// What the shadow loop reports outside: a route's summary for /admin/routes (with the
/// side-by-side figures of both models), verdict lines and transition lines for the logs, and
/// the labels its states and verdicts carry in the metrics. Plain C++: no sockets.

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "metrics/metrics.hpp"
#include "shadow/controller.hpp"
#include "shadow/judge.hpp"

namespace turnout::shadow {

/// The shadow-measured figures of one model of a route, over its last pairs.
struct SideStats {
    std::deque<double> latency_ms;
    std::deque<double> ttft_ms;
    std::uint64_t calls = 0;
    std::uint64_t output_tokens = 0;
    double cost_usd = 0;

    void add(double latency, double ttft, std::uint64_t input_tokens, std::uint64_t output,
             const config::PriceConfig& price);
    double cost_per_1k_requests() const;
};

/// One route's object in /admin/routes.
std::string route_json(const config::RouteConfig& route, const Controller& controller,
                       const SideStats& primary, const SideStats& candidate);

/// One side of a judged pair, as the verdict line records it.
struct PairSide {
    double latency_ms = 0;
    std::uint64_t output_tokens = 0;
    double cost_usd = 0;
};

/// One line of a route's verdict log.
struct VerdictLine {
    TimePoint time;
    std::string_view route;
    std::uint64_t seq = 0;  ///< numbers the verdicts, so a restore replays the unsaved ones once
    std::string_view request_id;
    const ParsedVerdict* parsed = nullptr;
    VerdictKind kind = VerdictKind::error;
    PairSide primary;
    PairSide candidate;
};
std::string verdict_line(const VerdictLine& line);

/// One line of the transition log: `{"route":..., "event":{...}}`.
std::string event_line(std::string_view route, const TransitionEvent& event);

metrics::RouteStateLabel state_label(RouteState state);
metrics::Verdict metrics_verdict(VerdictKind kind);

}  // namespace turnout::shadow
