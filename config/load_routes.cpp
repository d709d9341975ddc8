// The `routes:` section: each route's name, match, targets, retries and timeout. Its
// evaluation (shadow, judge, promotion) is read by load_shadow.cpp.
#include <string>

#include "config/sections.hpp"
#include "config/upstream_extras.hpp"

namespace turnout::config::detail {
namespace {

void load_match(LoadContext& ctx, const Field& f, MatchConfig& match) {
    MapView m(ctx.diag, f, {"model", "headers", "keys"});
    if (!m.valid()) return;
    m.string("model", match.model);
    if (const auto* h = m.get("headers")) read_headers(ctx.diag, *h, match.headers, true);
    const auto* keys = m.get("keys");
    if (!keys) return;
    for_each_item(ctx.diag, *keys, [&](const Field& item) {
        std::string name;
        if (read_string(ctx.diag, item, name) && ctx.refs.check_key(item, name)) {
            match.keys.push_back(name);
        }
    });
}

/// One of `primary`, `candidate`, `targets[i]` or `fallbacks[i]`; only `targets` (`weighted`)
/// may give a weight.
TargetConfig load_target(LoadContext& ctx, const Field& f, bool weighted) {
    TargetConfig target;
    MapView m(ctx.diag, f, {"provider", "model", "weight", "headers", "body"});
    if (!m.valid()) return target;
    ctx.refs.read_provider(m, target.provider);
    m.required_text("model", target.model);
    if (const auto* w = m.get("weight")) {
        if (weighted) {
            read_count(ctx.diag, *w, target.weight, 1);
        } else {
            ctx.diag.error(*w, "'weight' is only allowed in 'targets'");
        }
    }
    if (const auto* h = m.get("headers")) read_headers(ctx.diag, *h, target.headers, false);
    if (const auto* b = m.get("body")) read_extra_body(ctx.diag, *b, target.extra_body_json);
    return target;
}

void load_target_list(LoadContext& ctx, const Field& f, std::vector<TargetConfig>& out,
                      bool weighted) {
    for_each_item(ctx.diag, f,
                  [&](const Field& item) { out.push_back(load_target(ctx, item, weighted)); });
}

void load_route_targets(LoadContext& ctx, const MapView& m, RouteConfig& route) {
    const auto* primary = m.get("primary");
    const auto* targets = m.get("targets");
    if (primary) route.primary = load_target(ctx, *primary, false);
    if (const auto* x = m.get("candidate")) route.candidate = load_target(ctx, *x, false);
    if (targets) {
        load_target_list(ctx, *targets, route.targets, true);
        if (route.targets.empty()) ctx.diag.error(*targets, "must not be empty");
    }
    if (const auto* x = m.get("fallbacks")) load_target_list(ctx, *x, route.fallbacks, false);
    if (primary && targets) {
        ctx.diag.error(*targets, "a route has either 'primary' or 'targets', not both");
    } else if (!primary && !targets) {
        ctx.diag.error(m.at(), m.path(), "a route needs 'primary' or 'targets'");
    }
}

void load_retries(LoadContext& ctx, const Field& f, RetryConfig& retries) {
    MapView m(ctx.diag, f, {"attempts", "backoff"});
    if (!m.valid()) return;
    m.count("attempts", retries.attempts);
    m.duration("backoff", retries.backoff);
}

void load_route(LoadContext& ctx, const Field& f, RouteConfig& route) {
    MapView m(ctx.diag, f,
              {"name", "match", "primary", "candidate", "targets", "fallbacks", "retries",
               "timeout", "shadow", "judge", "promotion"});
    if (!m.valid()) return;
    if (m.required_text("name", route.name)) ctx.refs.define_route(*m.get("name"), route.name);
    if (const auto* x = m.get("match")) load_match(ctx, *x, route.match);
    load_route_targets(ctx, m, route);
    if (const auto* x = m.get("retries")) load_retries(ctx, *x, route.retries);
    m.duration("timeout", route.timeout, true);
    if (const auto* x = m.get("shadow")) load_shadow(ctx, *x, route.shadow);
    if (const auto* x = m.get("judge")) load_judge(ctx, *x, route.judge, route.candidate);
    if (const auto* x = m.get("promotion")) load_promotion(ctx, *x, route.promotion);
}

}  // namespace

void load_routes(LoadContext& ctx, const Field& f, std::vector<RouteConfig>& routes) {
    const bool list_ok = for_each_item(
        ctx.diag, f, [&](const Field& item) { load_route(ctx, item, routes.emplace_back()); });
    if (list_ok && routes.empty()) ctx.diag.error(f, "at least one route is required");
}

}  // namespace turnout::config::detail
