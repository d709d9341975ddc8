#pragma once
/// The simulator's own endpoints under /_sim/, for tests: GET stats, GET last_request,
/// GET/POST config (degrade_rate at run time), POST reset. Never counted as requests.

#include <string_view>

#include "sim/exchange.hpp"

namespace turnout::sim {

/// Answers a /_sim/ request: the body is rendered into exchange.body(); returns the status.
unsigned serve_control(Exchange& exchange, std::string_view path);

}  // namespace turnout::sim
