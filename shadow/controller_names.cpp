// The names of the controller's enums: label values, log and JSON text.
#include <array>
#include <cstddef>
#include <string_view>

#include "shadow/controller.hpp"

namespace turnout::shadow {
namespace {

// Names in enumerator order; the enums are contiguous from 0.
constexpr std::array<std::string_view, 5> kStateNames{"shadowing", "ramping", "promoted",
                                                      "rolled_back", "pinned"};
constexpr std::array<std::string_view, 2> kSideNames{"primary", "candidate"};
constexpr std::array<std::string_view, 3> kVerdictNames{"pass", "fail", "error"};
constexpr std::array<std::string_view, 3> kEventKindNames{"transition", "ramp_step",
                                                          "evidence_reset"};
constexpr std::array<std::string_view, 3> kTriggerNames{"automatic", "manual", "config"};
constexpr std::array<std::string_view, 3> kDecisionNames{"undecided", "accepted", "rejected"};
constexpr std::array<std::string_view, 4> kModeNames{"shadow", "auto", "pin-primary",
                                                     "pin-candidate"};

template <std::size_t N, typename E>
std::string_view name_of(const std::array<std::string_view, N>& names, E value) {
    const auto index = static_cast<std::size_t>(value);
    return index < N ? names[index] : std::string_view("unknown");
}

}  // namespace

std::string_view to_string(RouteState state) { return name_of(kStateNames, state); }
std::string_view to_string(Side side) { return name_of(kSideNames, side); }
std::string_view to_string(VerdictKind kind) { return name_of(kVerdictNames, kind); }
std::string_view to_string(EventKind kind) { return name_of(kEventKindNames, kind); }
std::string_view to_string(Trigger trigger) { return name_of(kTriggerNames, trigger); }
std::string_view to_string(SprtDecision decision) { return name_of(kDecisionNames, decision); }
std::string_view to_string(config::PromotionMode mode) { return name_of(kModeNames, mode); }

}  // namespace turnout::shadow
