#pragma once
/// What one request is planned to do: the settings, overridden by its x-sim-* headers (faults,
/// timing, length, text). Plain C++.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "sim/state.hpp"

namespace turnout::sim {

/// What one request generates.
struct Generation {
    std::chrono::milliseconds ttft{0};
    double tps = 0;
    std::size_t tokens = 0;
    const std::vector<std::string>* words = nullptr;
    bool degraded = false;  // the last token carries kDegradedMarker
};

struct Plan {
    Faults faults;
    Generation gen;
};

/// Fills `plan` from `settings` and the request's x-sim-* headers (unknown ones are ignored,
/// like unknown headers anywhere); an x-sim-text override is split into `words`, which must
/// outlive the plan. Returns "" or the problem with a header.
std::string plan_request(const Settings& settings, const RequestData& request,
                         std::vector<std::string>& words, Plan& plan);

/// The time to first token plus `tokens` at `tps`.
Clock::duration generation_time(const Generation& gen);

}  // namespace turnout::sim
