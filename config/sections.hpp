#pragma once
/// Internal to the loader: one reader per section of the file, all reporting into one
/// Diagnostics. loader.cpp reads the root map and calls them in dependency order.

#include <optional>
#include <vector>

#include "config/config.hpp"
#include "config/references.hpp"
#include "config/yaml_reader.hpp"

namespace turnout::config::detail {

/// What every section reader shares: where problems go, and the names defined so far.
struct LoadContext {
    Diagnostics& diag;
    References& refs;
};

// load_process.cpp: the process-level keys of the root map (listen, admin, state, limits, log).
void load_process(LoadContext& ctx, const MapView& root, Config& config);

// load_providers.cpp: `keys:` (client keys) and `providers:`.
void load_keys(LoadContext& ctx, const Field& f, std::vector<ClientKeyConfig>& keys);
void load_providers(LoadContext& ctx, const Field& f, std::vector<ProviderConfig>& providers);

// load_routes.cpp: `routes:` (match, targets, retries; the evaluation below).
void load_routes(LoadContext& ctx, const Field& f, std::vector<RouteConfig>& routes);

// load_shadow.cpp: a route's `shadow:`, `judge:` and `promotion:`.
void load_shadow(LoadContext& ctx, const Field& f, ShadowConfig& shadow);
/// `candidate` is the route's, read before: the judge must not grade its own answers.
void load_judge(LoadContext& ctx, const Field& f, JudgeConfig& judge,
                const std::optional<TargetConfig>& candidate);
void load_promotion(LoadContext& ctx, const Field& f, PromotionConfig& promotion);

}  // namespace turnout::config::detail
