#pragma once
/// Internal to shadow/: every value of the controller's enums, in enumerator order, and the
/// inverse of their to_string(), for the readers of saved states and log lines.

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

#include "shadow/controller.hpp"

namespace turnout::shadow {

inline constexpr std::array kRouteStates{RouteState::shadowing, RouteState::ramping,
                                         RouteState::promoted, RouteState::rolled_back,
                                         RouteState::pinned};
inline constexpr std::array kSides{Side::primary, Side::candidate};
inline constexpr std::array kVerdictKinds{VerdictKind::pass, VerdictKind::fail, VerdictKind::error};
inline constexpr std::array kEventKinds{EventKind::transition, EventKind::ramp_step,
                                        EventKind::evidence_reset};
inline constexpr std::array kTriggers{Trigger::automatic, Trigger::manual, Trigger::config};
inline constexpr std::array kPromotionModes{
    config::PromotionMode::shadow, config::PromotionMode::automatic,
    config::PromotionMode::pin_primary, config::PromotionMode::pin_candidate};

/// The value among `values` whose to_string() is `name`; nullopt when none is.
template <typename E, std::size_t N>
std::optional<E> from_name(std::string_view name, const std::array<E, N>& values) {
    for (const E value : values) {
        if (to_string(value) == name) return value;
    }
    return std::nullopt;
}

}  // namespace turnout::shadow
