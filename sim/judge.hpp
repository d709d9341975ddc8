#pragma once
/// The judge (--role judge): reads the fenced answers of a turnout judge prompt and replies with
/// a verdict, so the shadow loop (primary, candidate, judge) runs end to end on simulators.
/// Plain C++.
///
/// turnout's judge prompt fences each of REQUEST, ANSWER_A and ANSWER_B between a line
/// `<<<{boundary}:NAME` and a line `{boundary}:NAME>>>` (shadow/judge.hpp). The simulated
/// judge finds both answers and scores: B tagged [degraded] 40, B identical to A 100, else 97.

#include <rapidjson/document.h>

#include <string>

#include "sim/state.hpp"

namespace turnout::sim {

/// The judge's reply to a chat request, into `verdict`: prose without JSON (--judge-garbage), a
/// refusal when the prompt lacks the answers' fences, or the verdict as a chatty model writes
/// it. Either of the first two is a judge error for the gateway. `scratch` is reused to join a
/// prompt's text parts.
void compose_verdict(const Settings& settings, const rapidjson::Value& request,
                     std::string& scratch, std::string& verdict);

}  // namespace turnout::sim
