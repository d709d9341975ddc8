#include "metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/metrics/exposition.hpp"
#include "tests/unit/metrics/sample_families.hpp"

namespace turnout::metrics {
namespace {

using testing::Exposition;
using testing::LabelMap;
using testing::parse_exposition;

Exposition scrape(const Metrics& metrics) {
    Exposition parsed = parse_exposition(metrics.render());
    EXPECT_TRUE(parsed.errors.empty()) << "unreadable line: " << parsed.errors.front();
    return parsed;
}

const config::PriceConfig kOpus{15.0, 75.0};
const config::PriceConfig kSpark{0.5, 2.0};

// The contract's table (CONTRACT.md "Metrics"): names, types and label names, exactly.
TEST(Metrics, ExposesEveryContractFamilyWithItsTypeAndLabels) {
    Metrics metrics;
    testing::record_one_of_each(metrics);
    const Exposition parsed = scrape(metrics);
    struct Expected {
        const char* name;
        const char* type;
        std::set<std::string> labels;
    };
    const std::vector<Expected> contract = {
        {"turnout_requests_total", "counter", {"route", "provider", "model", "code"}},
        {"turnout_request_duration_seconds", "histogram", {"route", "provider"}},
        {"turnout_time_to_first_token_seconds", "histogram", {"route", "provider"}},
        {"turnout_upstream_errors_total", "counter", {"provider", "kind"}},
        {"turnout_tokens_total", "counter", {"route", "provider", "direction"}},
        {"turnout_cost_usd_total", "counter", {"route", "provider"}},
        {"turnout_shadow_requests_total", "counter", {"route", "outcome"}},
        {"turnout_judge_verdicts_total", "counter", {"route", "verdict"}},
        {"turnout_judge_score", "histogram", {"route"}},
        {"turnout_pass_rate", "gauge", {"route"}},
        {"turnout_route_state", "gauge", {"route", "state"}},
        {"turnout_route_flips_total", "counter", {"route", "to"}},
        {"turnout_config_reloads_total", "counter", {"result"}},
        // Issue 5's additions.
        {"turnout_overhead_seconds", "histogram", {"route"}},
        {"turnout_inflight_requests", "gauge", {}},
    };
    for (const Expected& expected : contract) {
        SCOPED_TRACE(expected.name);
        const auto it = parsed.families.find(expected.name);
        ASSERT_NE(it, parsed.families.end());
        EXPECT_EQ(it->second.type, expected.type);
        EXPECT_EQ(it->second.label_names, expected.labels);
        EXPECT_FALSE(it->second.help.empty());
        EXPECT_GT(it->second.samples, 0u);
    }
}

TEST(Metrics, EveryFamilyHasHelpAndAKnownType) {
    Metrics metrics;
    testing::record_one_of_each(metrics);
    const Exposition parsed = scrape(metrics);
    EXPECT_GE(parsed.families.size(), 15u);
    for (const auto& [name, family] : parsed.families) {
        SCOPED_TRACE(name);
        EXPECT_TRUE(name.starts_with("turnout_"));
        EXPECT_FALSE(family.help.empty());
        EXPECT_TRUE(family.type == "counter" || family.type == "gauge" ||
                    family.type == "histogram");
        EXPECT_EQ(family.type == "counter", name.ends_with("_total"));
    }
}

TEST(Metrics, ContentTypeIsTheTextFormat) {
    EXPECT_STREQ(Metrics::kContentType, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(Metrics, RequestsAreCountedPerCodeWithTheirDurations) {
    Metrics metrics;
    auto target = metrics.target("coding", "opus", "claude-opus-4-6", kOpus);
    target->request(200, 0.3);
    target->request(200, 0.5);
    target->request(200, 0.2);
    target->request(429, 1.0);
    const Exposition parsed = scrape(metrics);

    const LabelMap labels = {
        {"route", "coding"}, {"provider", "opus"}, {"model", "claude-opus-4-6"}};
    auto with_code = [&](const char* code) {
        LabelMap l = labels;
        l["code"] = code;
        return l;
    };
    EXPECT_EQ(parsed.value("turnout_requests_total", with_code("200")), 3.0);
    EXPECT_EQ(parsed.value("turnout_requests_total", with_code("429")), 1.0);
    EXPECT_EQ(parsed.count("turnout_requests_total"), 2u);  // unused codes make no series

    const LabelMap rp = {{"route", "coding"}, {"provider", "opus"}};
    EXPECT_EQ(parsed.value("turnout_request_duration_seconds_count", rp), 4.0);
    EXPECT_NEAR(*parsed.value("turnout_request_duration_seconds_sum", rp), 2.0, 1e-9);
    auto bucket = [&](const char* le) {
        LabelMap l = rp;
        l["le"] = le;
        return parsed.value("turnout_request_duration_seconds_bucket", l);
    };
    EXPECT_EQ(bucket("0.1"), 0.0);
    EXPECT_EQ(bucket("0.25"), 1.0);
    EXPECT_EQ(bucket("0.5"), 3.0);  // `le` is inclusive: 0.5 lands in le="0.5"
    EXPECT_EQ(bucket("1"), 4.0);
    EXPECT_EQ(bucket("600"), 4.0);
    EXPECT_EQ(bucket("+Inf"), 4.0);
}

TEST(Metrics, LatencyBucketsSpanMillisecondsToMinutes) {
    EXPECT_DOUBLE_EQ(kLatencyBuckets.front(), 0.005);
    EXPECT_DOUBLE_EQ(kLatencyBuckets.back(), 600);
    EXPECT_DOUBLE_EQ(kOverheadBuckets.front(), 0.00001);
    EXPECT_DOUBLE_EQ(kOverheadBuckets.back(), 0.1);
    EXPECT_DOUBLE_EQ(kScoreBuckets.front(), 0);
    EXPECT_DOUBLE_EQ(kScoreBuckets.back(), 100);
    EXPECT_TRUE(std::is_sorted(kLatencyBuckets.begin(), kLatencyBuckets.end()));
    EXPECT_TRUE(std::is_sorted(kOverheadBuckets.begin(), kOverheadBuckets.end()));
    EXPECT_TRUE(std::is_sorted(kScoreBuckets.begin(), kScoreBuckets.end()));
}

TEST(Metrics, CodesOutside100To599BecomeZero) {
    Metrics metrics;
    auto target = metrics.target("r", "p", "m", {});
    for (unsigned code : {0u, 1u, 99u, 600u, 999u, 65535u, 4294967295u}) target->request(code, 0);
    target->request(100, 0);
    target->request(599, 0);
    const Exposition parsed = scrape(metrics);
    const LabelMap base = {{"route", "r"}, {"provider", "p"}, {"model", "m"}};
    auto with_code = [&](const char* code) {
        LabelMap l = base;
        l["code"] = code;
        return l;
    };
    EXPECT_EQ(parsed.value("turnout_requests_total", with_code("0")), 7.0);
    EXPECT_EQ(parsed.value("turnout_requests_total", with_code("100")), 1.0);
    EXPECT_EQ(parsed.value("turnout_requests_total", with_code("599")), 1.0);
    EXPECT_EQ(parsed.count("turnout_requests_total"), 3u);
}

TEST(Metrics, BadDurationsAreClampedOrIgnored) {
    Metrics metrics;
    auto target = metrics.target("r", "p", "m", {});
    target->request(200, -1.0);          // clamped to 0
    target->request(200, std::nan(""));  // counted, not observed
    target->overhead(std::nan(""));
    const Exposition parsed = scrape(metrics);
    const LabelMap rp = {{"route", "r"}, {"provider", "p"}};
    EXPECT_EQ(parsed.sum("turnout_requests_total"), 2.0);
    EXPECT_EQ(parsed.value("turnout_request_duration_seconds_count", rp), 1.0);
    EXPECT_EQ(parsed.value("turnout_request_duration_seconds_sum", rp), 0.0);
    EXPECT_EQ(parsed.value("turnout_overhead_seconds_count", {{"route", "r"}}), 0.0);
}

TEST(Metrics, TokensAndCostFollowThePricePerMillionTokens) {
    Metrics metrics;
    auto target = metrics.target("coding", "opus", "claude-opus-4-6", kOpus);
    target->tokens(1000, 2000);
    target->tokens(500, 0);
    // 1,500 input at $15/M + 2,000 output at $75/M = 0.0225 + 0.15
    EXPECT_NEAR(target->cost_usd(1500, 2000), 0.1725, 1e-12);
    const Exposition parsed = scrape(metrics);
    const LabelMap rp = {{"route", "coding"}, {"provider", "opus"}};
    auto tokens = [&](const char* direction) {
        LabelMap l = rp;
        l["direction"] = direction;
        return parsed.value("turnout_tokens_total", l);
    };
    EXPECT_EQ(tokens("input"), 1500.0);
    EXPECT_EQ(tokens("output"), 2000.0);
    EXPECT_NEAR(*parsed.value("turnout_cost_usd_total", rp), 0.1725, 1e-9);
    // Without a baseline the target is its own baseline: no saving.
    EXPECT_NEAR(*parsed.value("turnout_baseline_cost_usd_total", {{"route", "coding"}}), 0.1725,
                1e-9);
}

TEST(Metrics, BaselineCostPricesTheCandidatesTokensAtThePrimarysPrice) {
    Metrics metrics;
    auto primary = metrics.target("coding", "opus", "claude-opus-4-6", kOpus);
    auto candidate = metrics.target("coding", "spark", "spark-1", kSpark, kOpus);
    primary->tokens(1'000'000, 0);            // $15 actual, $15 baseline
    candidate->tokens(1'000'000, 1'000'000);  // $2.5 actual, $90 baseline
    const Exposition parsed = scrape(metrics);
    EXPECT_NEAR(parsed.sum("turnout_cost_usd_total", {{"route", "coding"}}), 17.5, 1e-9);
    EXPECT_NEAR(*parsed.value("turnout_baseline_cost_usd_total", {{"route", "coding"}}), 105.0,
                1e-9);
    EXPECT_NEAR(
        *parsed.value("turnout_cost_usd_total", {{"route", "coding"}, {"provider", "spark"}}), 2.5,
        1e-9);
}

TEST(Metrics, TargetHandlesAreCachedAndShareSeries) {
    Metrics metrics;
    auto a = metrics.target("r", "p", "m", kOpus);
    auto b = metrics.target("r", "p", "m", kOpus);
    EXPECT_EQ(a.get(), b.get());
    EXPECT_NE(a.get(), metrics.target("r", "p", "other", kOpus).get());
    // A reload with a new price gives a new handle over the same series.
    auto repriced = metrics.target("r", "p", "m", kSpark);
    EXPECT_NE(a.get(), repriced.get());
    EXPECT_DOUBLE_EQ(repriced->price().input_per_mtok, 0.5);
    a->request(200, 0.1);
    repriced->request(200, 0.1);
    a->tokens(1'000'000, 0);
    repriced->tokens(1'000'000, 0);
    const Exposition parsed = scrape(metrics);
    EXPECT_EQ(parsed.sum("turnout_requests_total", {{"model", "m"}}), 2.0);
    EXPECT_NEAR(parsed.sum("turnout_cost_usd_total"), 15.5, 1e-9);
    EXPECT_EQ(metrics.route("x").get(), metrics.route("x").get());
    EXPECT_EQ(metrics.shadow_target("r", "p", ShadowCall::mirror, kOpus).get(),
              metrics.shadow_target("r", "p", ShadowCall::mirror, kOpus).get());
}

TEST(Metrics, UnmatchedRequestsUseFixedLabelValues) {
    Metrics metrics;
    metrics.unmatched()->request(404, 0.001);
    metrics.unmatched()->request(404, 0.001);
    const Exposition parsed = scrape(metrics);
    EXPECT_EQ(
        parsed.value("turnout_requests_total",
                     {{"route", "none"}, {"provider", "none"}, {"model", "none"}, {"code", "404"}}),
        2.0);
}

TEST(Metrics, UpstreamErrorKindsUseTheContractsLabelValues) {
    Metrics metrics;
    auto target = metrics.target("r", "opus", "m", {});
    const std::vector<std::pair<UpstreamErrorKind, const char*>> kinds = {
        {UpstreamErrorKind::connect, "connect"},
        {UpstreamErrorKind::timeout, "timeout"},
        {UpstreamErrorKind::status_5xx, "status_5xx"},
        {UpstreamErrorKind::status_429, "status_429"},
        {UpstreamErrorKind::reset, "reset"},
        {UpstreamErrorKind::tls, "tls"},
        {UpstreamErrorKind::protocol, "protocol"},
        {UpstreamErrorKind::circuit_open, "circuit_open"}};
    for (const auto& [kind, text] : kinds) {
        EXPECT_EQ(label_value(kind), text);
        target->upstream_error(kind);
        metrics.upstream_error("opus", kind);
        metrics.upstream_error("spark", kind);
    }
    const Exposition parsed = scrape(metrics);
    for (const auto& [kind, text] : kinds) {
        EXPECT_EQ(
            parsed.value("turnout_upstream_errors_total", {{"provider", "opus"}, {"kind", text}}),
            2.0)
            << text;
        EXPECT_EQ(
            parsed.value("turnout_upstream_errors_total", {{"provider", "spark"}, {"kind", text}}),
            1.0)
            << text;
    }
}

TEST(Metrics, RouteStateGaugeHasExactlyOneCurrentState) {
    Metrics metrics;
    const std::vector<std::pair<RouteStateLabel, const char*>> states = {
        {RouteStateLabel::shadowing, "shadowing"}, {RouteStateLabel::ramping, "ramping"},
        {RouteStateLabel::promoted, "promoted"},   {RouteStateLabel::rolled_back, "rolled_back"},
        {RouteStateLabel::pinned, "pinned"},       {RouteStateLabel::shadowing, "shadowing"}};
    metrics.set_route_state("other", RouteStateLabel::pinned);
    for (const auto& [state, text] : states) {
        SCOPED_TRACE(text);
        metrics.set_route_state("coding", state);
        const Exposition parsed = scrape(metrics);
        EXPECT_EQ(parsed.count("turnout_route_state", {{"route", "coding"}}), 5u);
        EXPECT_EQ(parsed.sum("turnout_route_state", {{"route", "coding"}}), 1.0);
        EXPECT_EQ(parsed.value("turnout_route_state", {{"route", "coding"}, {"state", text}}), 1.0);
        // Other routes are untouched.
        EXPECT_EQ(parsed.value("turnout_route_state", {{"route", "other"}, {"state", "pinned"}}),
                  1.0);
    }
}

TEST(Metrics, RetainRoutesClearsTheStateOfRemovedRoutes) {
    Metrics metrics;
    metrics.set_route_state("kept", RouteStateLabel::promoted);
    metrics.set_route_state("removed", RouteStateLabel::rolled_back);
    metrics.retain_routes({"kept"});
    const Exposition parsed = scrape(metrics);
    EXPECT_EQ(parsed.sum("turnout_route_state", {{"route", "kept"}}), 1.0);
    EXPECT_EQ(parsed.sum("turnout_route_state", {{"route", "removed"}}), 0.0);
}

TEST(Metrics, ConcurrentStateChangesLeaveOneState) {
    Metrics metrics;
    auto route = metrics.route("coding");
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&route, t] {
            for (int i = 0; i < 2000; ++i) {
                route->set_route_state(static_cast<RouteStateLabel>((i + t) % 5));
                route->set_pass_rate(0.5);  // the first calls race to create the series
                route->set_thresholds(0.9, 0.85);
            }
        });
    }
    for (auto& thread : threads) thread.join();
    const Exposition parsed = scrape(metrics);
    EXPECT_EQ(parsed.sum("turnout_route_state", {{"route", "coding"}}), 1.0);
    EXPECT_EQ(parsed.count("turnout_pass_rate"), 1u);
    EXPECT_EQ(parsed.count("turnout_pass_rate_threshold"), 2u);
}

TEST(Metrics, ShadowJudgeAndFlipCountersStartAtZero) {
    Metrics metrics;
    metrics.route("coding");
    const Exposition parsed = scrape(metrics);
    for (const char* outcome : {"sent", "dropped", "error"}) {
        EXPECT_EQ(parsed.value("turnout_shadow_requests_total",
                               {{"route", "coding"}, {"outcome", outcome}}),
                  0.0);
    }
    for (const char* verdict : {"pass", "fail", "error"}) {
        EXPECT_EQ(parsed.value("turnout_judge_verdicts_total",
                               {{"route", "coding"}, {"verdict", verdict}}),
                  0.0);
    }
    for (const char* to : {"primary", "candidate"}) {
        EXPECT_EQ(parsed.value("turnout_route_flips_total", {{"route", "coding"}, {"to", to}}),
                  0.0);
    }
    // No verdict yet: the pass rate is unknown, not 0 (and no NaN, which strict parsers reject).
    EXPECT_EQ(parsed.count("turnout_pass_rate"), 0u);
    EXPECT_EQ(parsed.count("turnout_pass_rate_threshold"), 0u);
    EXPECT_EQ(parsed.value("turnout_route_samples", {{"route", "coding"}}), 0.0);
}

TEST(Metrics, ShadowAndJudgeOutcomes) {
    Metrics metrics;
    metrics.shadow_request("coding", ShadowOutcome::sent);
    metrics.shadow_request("coding", ShadowOutcome::sent);
    metrics.shadow_request("coding", ShadowOutcome::dropped);
    metrics.shadow_request("coding", ShadowOutcome::error);
    metrics.judge_verdict("coding", Verdict::pass, 95.0);
    metrics.judge_verdict("coding", Verdict::fail, 94.99);
    metrics.judge_verdict("coding", Verdict::fail, 10.0);
    metrics.judge_verdict("coding", Verdict::error, std::nullopt);
    metrics.set_pass_rate("coding", 1.0 / 3.0);
    metrics.route("coding")->set_samples(3);
    metrics.route("coding")->set_thresholds(0.9, 0.85);
    metrics.route_flip("coding", FlipTo::candidate);
    metrics.route_flip("coding", FlipTo::primary);
    metrics.route_flip("coding", FlipTo::candidate);
    const Exposition parsed = scrape(metrics);
    const LabelMap route = {{"route", "coding"}};
    auto with = [&](const char* key, const char* value) {
        LabelMap l = route;
        l[key] = value;
        return l;
    };
    EXPECT_EQ(parsed.value("turnout_shadow_requests_total", with("outcome", "sent")), 2.0);
    EXPECT_EQ(parsed.value("turnout_shadow_requests_total", with("outcome", "dropped")), 1.0);
    EXPECT_EQ(parsed.value("turnout_shadow_requests_total", with("outcome", "error")), 1.0);
    EXPECT_EQ(parsed.value("turnout_judge_verdicts_total", with("verdict", "pass")), 1.0);
    EXPECT_EQ(parsed.value("turnout_judge_verdicts_total", with("verdict", "fail")), 2.0);
    EXPECT_EQ(parsed.value("turnout_judge_verdicts_total", with("verdict", "error")), 1.0);
    // Only verdicts with a score are observed; 95 is in le="95", 94.99 is too.
    EXPECT_EQ(parsed.value("turnout_judge_score_count", route), 3.0);
    EXPECT_EQ(parsed.value("turnout_judge_score_bucket", with("le", "90")), 1.0);
    EXPECT_EQ(parsed.value("turnout_judge_score_bucket", with("le", "95")), 3.0);
    EXPECT_NEAR(*parsed.value("turnout_pass_rate", route), 1.0 / 3.0, 1e-9);
    EXPECT_EQ(parsed.value("turnout_route_samples", route), 3.0);
    EXPECT_EQ(parsed.value("turnout_pass_rate_threshold", with("bound", "promote")), 0.9);
    EXPECT_EQ(parsed.value("turnout_pass_rate_threshold", with("bound", "rollback")), 0.85);
    EXPECT_EQ(parsed.value("turnout_route_flips_total", with("to", "candidate")), 2.0);
    EXPECT_EQ(parsed.value("turnout_route_flips_total", with("to", "primary")), 1.0);
}

TEST(Metrics, ShadowSpendIsKeptApartFromLiveSpend) {
    Metrics metrics;
    auto mirror = metrics.shadow_target("coding", "spark", ShadowCall::mirror, kSpark);
    auto judge = metrics.shadow_target("coding", "opus", ShadowCall::judge, kOpus);
    mirror->tokens(1'000'000, 1'000'000);
    mirror->duration(0.5);
    judge->tokens(1'000'000, 0);
    judge->duration(3.0);
    const Exposition parsed = scrape(metrics);
    EXPECT_EQ(parsed.sum("turnout_tokens_total"), 0.0);
    EXPECT_EQ(parsed.sum("turnout_cost_usd_total"), 0.0);
    EXPECT_NEAR(*parsed.value("turnout_shadow_cost_usd_total",
                              {{"route", "coding"}, {"provider", "spark"}, {"call", "mirror"}}),
                2.5, 1e-9);
    EXPECT_NEAR(*parsed.value("turnout_shadow_cost_usd_total",
                              {{"route", "coding"}, {"provider", "opus"}, {"call", "judge"}}),
                15.0, 1e-9);
    EXPECT_EQ(parsed.value("turnout_shadow_tokens_total", {{"route", "coding"},
                                                           {"provider", "spark"},
                                                           {"call", "mirror"},
                                                           {"direction", "output"}}),
              1'000'000.0);
    EXPECT_EQ(parsed.value("turnout_shadow_duration_seconds_count",
                           {{"route", "coding"}, {"provider", "opus"}, {"call", "judge"}}),
              1.0);
}

TEST(Metrics, InflightAndReloads) {
    Metrics metrics;
    metrics.inflight_add(1);
    metrics.inflight_add(1);
    metrics.inflight_add(-1);
    metrics.config_reload(true);
    metrics.config_reload(true);
    metrics.config_reload(false);
    const Exposition parsed = scrape(metrics);
    EXPECT_EQ(parsed.value("turnout_inflight_requests", {}), 1.0);
    EXPECT_EQ(parsed.value("turnout_config_reloads_total", {{"result", "success"}}), 2.0);
    EXPECT_EQ(parsed.value("turnout_config_reloads_total", {{"result", "failure"}}), 1.0);
}

TEST(Metrics, OverheadIsMeasuredInMicroseconds) {
    Metrics metrics;
    auto target = metrics.target("r", "p", "m", {});
    target->overhead(0.000008);  // 8 µs
    target->overhead(0.00003);   // 30 µs
    target->overhead(0.2);       // beyond the last bucket
    const Exposition parsed = scrape(metrics);
    auto bucket = [&](const char* le) {
        return parsed.value("turnout_overhead_seconds_bucket", {{"route", "r"}, {"le", le}});
    };
    EXPECT_EQ(bucket("1e-05"), 1.0);
    EXPECT_EQ(bucket("5e-05"), 2.0);
    EXPECT_EQ(bucket("0.1"), 2.0);
    EXPECT_EQ(bucket("+Inf"), 3.0);
}

// metrics.hpp "Lifetime": a handle keeps the series it records into alive, so the data plane may
// go on recording through a config's handles after the `Metrics` that made them is gone. Nothing
// can scrape a destroyed registry, so the test shows what can be observed: while the registry
// lives, the handle records into its series (the scrape counts it); after it is gone, every
// recording path still runs, including those that add series to the orphaned families (a status
// code's first use, a gauge's first set), and the handle's own data is intact. A handle that
// pointed into freed series fails here under AddressSanitizer (heap-use-after-free), the build
// CI runs every unit test in.
TEST(Metrics, HandlesOutliveTheirMetrics) {
    std::shared_ptr<TargetMetrics> target;
    std::shared_ptr<RouteMetrics> route;
    std::shared_ptr<ShadowTargetMetrics> judge;
    {
        Metrics metrics;
        target = metrics.target("r", "p", "m", kOpus, kSpark);
        route = metrics.route("r");
        judge = metrics.shadow_target("r", "p", ShadowCall::judge, kOpus);
        target->request(200, 0.1);
        const Exposition parsed = scrape(metrics);
        EXPECT_EQ(
            parsed.value("turnout_requests_total",
                         {{"route", "r"}, {"provider", "p"}, {"model", "m"}, {"code", "200"}}),
            1.0);
    }
    // The registry is gone; the handles record into the series they keep alive.
    target->request(200, 0.1);  // an existing series
    target->request(503, 0.2);  // a code's first use: adds a series to the orphaned family
    target->time_to_first_token(0.05);
    target->tokens(1000, 2000);
    target->overhead(0.0001);
    target->upstream_error(UpstreamErrorKind::timeout);
    route->shadow_request(ShadowOutcome::sent);
    route->judge_verdict(Verdict::pass, 95.0);
    route->set_pass_rate(0.75);  // a gauge's first set: adds a series too
    route->set_thresholds(0.9, 0.5);
    route->set_route_state(RouteStateLabel::ramping);
    route->route_flip(FlipTo::candidate);
    judge->duration(0.4);
    judge->tokens(10, 20);

    EXPECT_EQ(target->route(), "r");
    EXPECT_EQ(target->provider(), "p");
    EXPECT_EQ(target->model(), "m");
    EXPECT_EQ(target->price().input_per_mtok, kOpus.input_per_mtok);
    EXPECT_EQ(target->baseline_price().output_per_mtok, kSpark.output_per_mtok);
    // 1000 input and 2000 output tokens at $15 / $75 per million.
    EXPECT_DOUBLE_EQ(target->cost_usd(1000, 2000), 0.165);
    EXPECT_EQ(route->route(), "r");
}

// Several threads record on shared handles (and resolve new codes) while another scrapes:
// every count is exact at the end.
TEST(Metrics, ConcurrentRecordingKeepsExactTotals) {
    Metrics metrics;
    constexpr int kThreads = 8;
    constexpr int kPerThread = 20000;
    auto shared = metrics.target("coding", "opus", "claude-opus-4-6", kOpus);
    std::atomic<bool> done{false};
    std::thread scraper([&] {
        while (!done.load()) (void)metrics.render();
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            // Each thread also asks for the handle itself: the cache must hand out one object.
            auto mine = metrics.target("coding", "opus", "claude-opus-4-6", kOpus);
            auto route = metrics.route("coding");
            for (int i = 0; i < kPerThread; ++i) {
                const unsigned code = (i % 4 == 0) ? 500 : (i % 4 == 1 ? 429 : 200);
                (i % 2 == 0 ? shared : mine)->request(code, 0.01 * (i % 7));
                mine->tokens(3, 5);
                mine->overhead(0.00002);
                route->judge_verdict(i % 3 == 0 ? Verdict::fail : Verdict::pass, 50.0);
                metrics.inflight_add(1);
                metrics.inflight_add(-1);
                if (i % 1000 == 0) metrics.upstream_error("opus", UpstreamErrorKind::reset);
                (void)t;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    done = true;
    scraper.join();

    const Exposition parsed = scrape(metrics);
    const double total = double(kThreads) * kPerThread;
    EXPECT_EQ(parsed.sum("turnout_requests_total"), total);
    EXPECT_EQ(parsed.sum("turnout_requests_total", {{"code", "500"}}), total / 4);
    EXPECT_EQ(parsed.sum("turnout_requests_total", {{"code", "429"}}), total / 4);
    EXPECT_EQ(parsed.sum("turnout_requests_total", {{"code", "200"}}), total / 2);
    EXPECT_EQ(parsed.value("turnout_request_duration_seconds_count",
                           {{"route", "coding"}, {"provider", "opus"}}),
              total);
    EXPECT_EQ(parsed.sum("turnout_tokens_total", {{"direction", "input"}}), 3 * total);
    EXPECT_EQ(parsed.sum("turnout_tokens_total", {{"direction", "output"}}), 5 * total);
    EXPECT_NEAR(parsed.sum("turnout_cost_usd_total"), total * (3 * 15.0 + 5 * 75.0) * 1e-6, 1e-6);
    EXPECT_EQ(parsed.value("turnout_overhead_seconds_count", {{"route", "coding"}}), total);
    EXPECT_EQ(parsed.value("turnout_judge_score_count", {{"route", "coding"}}), total);
    EXPECT_EQ(parsed.value("turnout_inflight_requests", {}), 0.0);
    EXPECT_EQ(
        parsed.value("turnout_upstream_errors_total", {{"provider", "opus"}, {"kind", "reset"}}),
        kThreads * (kPerThread / 1000.0));
}

// Cardinality: whatever a client sends, only config names and fixed enums become label values.
// The API has no way to pass client text, so the series count depends on the targets alone.
TEST(Metrics, SeriesCountDependsOnTargetsNotOnTraffic) {
    Metrics metrics;
    auto target = metrics.target("coding", "opus", "claude-opus-4-6", kOpus);
    target->request(200, 0.1);
    const std::size_t before = scrape(metrics).samples.size();
    for (int i = 0; i < 1000; ++i) {
        target->request(200, 0.001 * i);
        target->tokens(static_cast<std::uint64_t>(i), 1);
        metrics.unmatched()->request(404, 0.0);
        metrics.shadow_request("coding", ShadowOutcome::sent);
    }
    const std::size_t unmatched_and_route = scrape(metrics).samples.size() - before;
    for (int i = 0; i < 1000; ++i) {
        metrics.unmatched()->request(404, 0.0);
        target->request(200, 1.0);
    }
    EXPECT_EQ(scrape(metrics).samples.size() - before, unmatched_and_route);
}

}  // namespace
}  // namespace turnout::metrics
