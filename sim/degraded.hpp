#pragma once
/// Degraded answers (--degrade-rate, or POST /_sim/config at run time): which prompts get
/// ` [degraded]` appended to their answer. Plain C++.

#include <rapidjson/document.h>

namespace turnout::sim {

/// True for a stable share `rate` of prompts, decided by the request's `messages` alone, so the
/// same prompt gets the same treatment whichever model (simulator) answers it; a higher rate
/// degrades a superset of the prompts a lower one does.
bool degraded_prompt(const rapidjson::Value& request, double rate);

}  // namespace turnout::sim
