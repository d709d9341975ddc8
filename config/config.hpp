#pragma once
/// The whole turnout configuration as plain typed structs (CONTRACT.md, "Configuration").
/// Defaults live in member initialisers; no YAML type leaves the loader (loader.hpp).
/// A validated Config is shared as std::shared_ptr<const Config> and never mutated.
///
/// One header per part: server_config.hpp (admin, state, limits, log, client keys),
/// provider_config.hpp, route_config.hpp and the route's evaluation in shadow_config.hpp.

#include <string>
#include <string_view>
#include <vector>

#include "config/duration.hpp"
#include "config/provider_config.hpp"
#include "config/route_config.hpp"
#include "config/server_config.hpp"
#include "config/shadow_config.hpp"

namespace turnout::config {

struct Config {
    std::string source_path;  ///< the file as given on the command line
    std::string listen = "0.0.0.0:8080";
    AdminConfig admin;
    StateConfig state;
    LimitsConfig limits;
    LogConfig log;
    std::vector<ClientKeyConfig> keys;
    std::vector<ProviderConfig> providers;  ///< in file order
    std::vector<RouteConfig> routes;        ///< first match wins

    const ProviderConfig* find_provider(std::string_view name) const;
};

}  // namespace turnout::config
