#include "tests/unit/metrics/sample_families.hpp"

namespace turnout::metrics::testing {

void record_one_of_each(Metrics& metrics) {
    const config::PriceConfig opus{15.0, 75.0};
    const config::PriceConfig spark{0.5, 2.0};
    auto primary = metrics.target("coding", "opus", "claude-opus-4-6", opus);
    auto candidate = metrics.target("coding", "spark", "gpt-5.3-codex-spark", spark, opus);
    for (auto* target : {primary.get(), candidate.get()}) {
        target->request(200, 1.5);
        target->time_to_first_token(0.2);
        target->tokens(1200, 300);
        target->overhead(0.00004);
        target->upstream_error(UpstreamErrorKind::timeout);
    }
    metrics.unmatched()->request(404, 0.001);
    metrics.upstream_error("opus", UpstreamErrorKind::status_429);
    metrics.inflight_add(1);
    metrics.config_reload(true);
    metrics.config_reload(false);

    auto route = metrics.route("coding");
    route->set_thresholds(0.90, 0.85);
    route->set_route_state(RouteStateLabel::shadowing);
    route->shadow_request(ShadowOutcome::sent);
    route->shadow_request(ShadowOutcome::dropped);
    route->judge_verdict(Verdict::pass, 97);
    route->judge_verdict(Verdict::error, std::nullopt);
    route->set_pass_rate(1.0);
    route->set_samples(1);
    route->route_flip(FlipTo::candidate);
    route->set_route_state(RouteStateLabel::promoted);

    auto mirror = metrics.shadow_target("coding", "spark", ShadowCall::mirror, spark);
    mirror->duration(0.8);
    mirror->tokens(1200, 280);
    auto judge = metrics.shadow_target("coding", "opus", ShadowCall::judge, opus);
    judge->duration(4.0);
    judge->tokens(2500, 120);
}

}  // namespace turnout::metrics::testing
