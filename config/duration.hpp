#pragma once
/// The one duration type of the config: whole milliseconds, written with a unit in YAML
/// ("250ms", "30s", "10m", "2h"; see parse_duration in loader.hpp).

#include <chrono>

namespace turnout::config {

using Duration = std::chrono::milliseconds;

}  // namespace turnout::config
