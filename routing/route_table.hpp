#pragma once
/// The simple route lookup: which route serves a client's `model` (CONTRACT.md, "Model names").
/// Header and client-key matching come later; these functions look at `name` and `match.model`.

#include <string>
#include <string_view>
#include <vector>

#include "routing/config.hpp"

namespace turnout::routing {

/// Shell-style glob: `*` matches any run of characters (also none), `?` exactly one.
/// Case-sensitive; there are no character classes or escapes. A pattern without
/// wildcards is an exact comparison.
bool glob_match(std::string_view pattern, std::string_view text);

/// True when `pattern` contains `*` or `?`.
bool is_glob(std::string_view pattern);

/// The first route, in file order, whose `name` equals `model`, whose `match.model`
/// matches it (exactly or as a glob), or whose `match.model` is empty (matches any model).
/// Returns nullptr when none does (the gateway answers 404). The pointer lives as long
/// as `config`.
const RouteConfig* find_route(const Config& config, std::string_view model);

/// The names clients may ask for (GET /v1/models): every route name and every
/// non-glob `match.model`, without duplicates, in config order.
std::vector<std::string> listed_model_names(const Config& config);

/// The target a route serves by default: `primary`, or the first of `targets` when the
/// route splits by weight. A validated route always has one; a route with neither is a
/// programming error and aborts with a message.
const TargetConfig& serving_target(const RouteConfig& route);

}  // namespace turnout::routing
