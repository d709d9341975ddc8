// The shadow loop end to end on simulated providers: sampled live requests are mirrored to the
// candidate and judged; a good candidate flips the route (and then serves live traffic), a poor
// one never does, degrading it after the flip rolls back, the state survives a restart, and
// neither a hung candidate, a hung judge, a garbage judge nor a full shadow queue changes a live
// answer.
//
// Every process is a `turnout simulate`: the primary (`slow`), the candidate (`fast`, degraded
// on demand with --degrade-rate or POST /_sim/config) and the judge (--role judge: 100 when B ==
// A, 97 when they differ, 40 when B is marked [degraded]). The default pass_score is 95.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/shadow_stack.hpp"

namespace turnout::test {
namespace {

constexpr const char* kRoute = ShadowStack::kRoute;
constexpr const char* kPrimary = ShadowStack::kPrimaryTarget;
constexpr const char* kCandidate = ShadowStack::kCandidateTarget;
/// Long enough for dozens of sequential requests plus their verdicts on a slow machine.
constexpr Millis kLongWait{20000};

/// The value of metric `name` for route `chat` with `labels` added (0 when absent).
/// Polls /metrics until metric `name` of route `chat` (with `labels` added; summed over the
/// other labels) equals `value`: metrics are updated just after a verdict becomes visible.
::testing::AssertionResult metric_is(GatewayProcess& gateway, const std::string& name,
                                     std::map<std::string, std::string> labels, double value) {
    labels["route"] = kRoute;
    return gateway.wait_for_metric(
        name, labels, [value](double v) { return v == value; }, "== " + std::to_string(value));
}

/// Every response answered 200 by `target`.
::testing::AssertionResult all_served_by(const std::vector<HttpResponse>& responses,
                                         const std::string& target) {
    for (std::size_t i = 0; i < responses.size(); ++i) {
        if (responses[i].status != 200 || responses[i].header("x-turnout-target") != target) {
            return ::testing::AssertionFailure()
                   << "response " << i << ": status " << responses[i].status
                   << ", x-turnout-target '" << responses[i].header("x-turnout-target")
                   << "', expected " << target << "; body: " << responses[i].body;
        }
    }
    return ::testing::AssertionSuccess();
}

/// The JSON log line of the route transition of `chat` to `state` (waits for it).
::testing::AssertionResult transition_logged(GatewayProcess& gateway, const std::string& state,
                                             rapidjson::Document& event) {
    std::string line;
    auto ok = gateway.wait_for_log(
        std::regex("\"msg\":\"route transition\".*\"to\":\"" + state + "\""), kWait, &line);
    if (!ok) return ok;
    event = parse_json(line);
    if (event.HasParseError() || !event.IsObject()) {
        return ::testing::AssertionFailure() << "not a JSON log line: " << line;
    }
    return ::testing::AssertionSuccess();
}

/// A live request that must be answered 200 by `target`.
::testing::AssertionResult served_by(ShadowStack& stack, const std::string& id,
                                     const std::string& target) {
    auto response = stack.ask(id);
    if (!response) return ::testing::AssertionFailure() << "no answer to " << id;
    return all_served_by({*response}, target);
}

/// Route `held` (model `held`, listed before `chat`, which matches every model): a copy of
/// route `chat` (same primary, candidate and judge) for showing that a live answer never waits
/// for the shadow. Nothing bounds its background calls within a test: the route timeout and the
/// hung provider's own timeout are kNeverTimeout (on `chat` the route timeout, 1 s, still bounds
/// that provider's calls). `inflight` copies may be out at once.
constexpr const char* kHeldRoute = "held";
void add_held_route(GatewayConfig& config, const std::string& hung_provider,
                    std::uint32_t inflight) {
    config.provider_option(hung_provider, "timeout", kNeverTimeout);
    RouteYaml held = config.route_named(kRoute);
    held.name = kHeldRoute;
    held.match_model = kHeldRoute;
    held.timeout = kNeverTimeout;
    held.shadow.max_inflight = inflight;
    config.routes().insert(config.routes().begin(), held);
}

/// `count` live requests to route `held`, each of which must be answered 200 by the primary
/// within the client's usual wait while its shadow call (candidate or judge) hangs for good:
/// an answer that waited for the shadow would never come.
::testing::AssertionResult held_route_answers(ShadowStack& stack, int count) {
    for (int i = 0; i < count; ++i) {
        const std::string id = "held-" + std::to_string(i);
        auto response =
            stack.gateway().chat(chat_body(kHeldRoute, false, "Question " + id + ": say hello."),
                                 {{"x-request-id", id}});
        if (!response) {
            return ::testing::AssertionFailure()
                   << "no live answer to " << id << " within " << kWait.count()
                   << " ms while its shadow call hangs";
        }
        if (auto ok = all_served_by({*response}, kPrimary); !ok) return ok;
    }
    return ::testing::AssertionSuccess();
}

TEST(ShadowTest, SampledPairsReachTheJudgeAndAreListedAsVerdicts) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start());
    constexpr int kRequests = 10;
    std::vector<HttpResponse> responses;
    ASSERT_TRUE(stack.send(kRequests, "pair", false, &responses));
    EXPECT_TRUE(all_served_by(responses, kPrimary));

    // Each sampled pair: one mirrored copy to the candidate, one judge call.
    EXPECT_TRUE(stack.judge().wait_for_stat(
        "judge_replies", [](std::int64_t v) { return v >= kRequests; }, kLongWait,
        ">= " + std::to_string(kRequests)));
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc));
    const auto& list = *verdict_list(doc);
    ASSERT_EQ(list.Size(), static_cast<rapidjson::SizeType>(kRequests)) << json_to_string(doc);
    std::set<std::string> ids;
    std::string previous_time;
    for (const auto& v : list.GetArray()) {
        SCOPED_TRACE(json_to_string(v));
        EXPECT_EQ(json_string(v, "route"), kRoute);
        auto id = json_string(v, "request_id").value_or("");
        EXPECT_TRUE(id.rfind("pair-", 0) == 0);
        ids.insert(id);
        // Both answers are the simulator's default text: identical, so the judge scores 100.
        EXPECT_EQ(json_number(v, "score"), 100.0);
        EXPECT_EQ(json_string(v, "verdict"), "pass");
        ASSERT_NE(json_at(v, "pass"), nullptr);
        EXPECT_TRUE(json_at(v, "pass")->IsTrue());
        EXPECT_FALSE(json_string(v, "reason").value_or("").empty());
        EXPECT_TRUE(json_string(v, "diff_summary").has_value());
        EXPECT_GT(json_number(v, "primary_latency_ms").value_or(-1), 0.0);
        EXPECT_GT(json_number(v, "candidate_latency_ms").value_or(-1), 0.0);
        auto time = json_string(v, "time").value_or("");
        EXPECT_FALSE(time.empty());
        // Newest first: ISO 8601 UTC times compare as text.
        if (!previous_time.empty()) {
            EXPECT_LE(time, previous_time);
        }
        previous_time = time;
    }
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(kRequests)) << "one verdict per request id";

    // The mirrored copies went to the candidate (its model, not streamed); the judge was asked
    // for its model at temperature 0, with both answers fenced in the prompt.
    EXPECT_TRUE(stack.candidate().wait_for_stat("requests", kRequests));
    auto mirrored = stack.candidate().last_request();
    ASSERT_TRUE(mirrored);
    auto mirrored_body = parse_json(mirrored->body);
    EXPECT_EQ(json_string(mirrored_body, "model"), "fast-model") << mirrored->body;
    auto judged = stack.judge().last_request();
    ASSERT_TRUE(judged);
    auto judge_body = parse_json(judged->body);
    EXPECT_EQ(json_string(judge_body, "model"), ShadowStack::kJudgeModel) << judged->body;
    EXPECT_EQ(json_number(judge_body, "temperature"), 0.0) << judged->body;
    EXPECT_NE(judged->body.find(":ANSWER_A"), std::string::npos);
    EXPECT_NE(judged->body.find(":ANSWER_B"), std::string::npos);

    auto& gw = stack.gateway();
    EXPECT_TRUE(gw.wait_for_metric(
        "turnout_judge_verdicts_total", {{"route", kRoute}, {"verdict", "pass"}},
        [](double v) { return v == kRequests; }, "== 10"));
    EXPECT_TRUE(gw.wait_for_metric(
        "turnout_shadow_requests_total", {{"route", kRoute}, {"outcome", "sent"}},
        [](double v) { return v == kRequests; }, "== 10"));
    EXPECT_TRUE(metric_is(gw, "turnout_pass_rate", {}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "shadowing"}}, 1.0));
    // Ten passes are far from min_samples: still shadowing.
    EXPECT_EQ(gw.route_state(kRoute), "shadowing");
}

TEST(ShadowTest, GoodCandidateFlipsTheRouteAndThenServesLiveTraffic) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        // No mirrored copies once promoted: the primary then sees no traffic at all.
        c.route_named(kRoute).promotion.shadow_after_promotion = 0.0;
    }));
    auto& gw = stack.gateway();
    ASSERT_TRUE(stack.send_until_state("promoted", 200, "good", kLongWait));

    // The flip waited for Wald's SPRT (52 straight passes at 0.90 vs 0.85, 95%), not just for
    // min_samples (50).
    rapidjson::Document event;
    ASSERT_TRUE(transition_logged(gw, "promoted", event));
    EXPECT_EQ(json_string(event, "trigger"), "automatic") << json_to_string(event);
    EXPECT_EQ(json_string(event, "from"), "shadowing") << json_to_string(event);
    EXPECT_GE(json_number(event, "samples").value_or(0), 52.0) << json_to_string(event);
    EXPECT_GE(json_number(event, "pass_rate").value_or(0), 0.9) << json_to_string(event);

    auto route = gw.admin_route(kRoute);
    ASSERT_FALSE(route.HasParseError());
    EXPECT_EQ(json_string(route, "state"), "promoted") << json_to_string(route);
    EXPECT_EQ(json_string(route, "live_target"), kCandidate) << json_to_string(route);
    EXPECT_EQ(json_number(route, "candidate_share"), 1.0) << json_to_string(route);

    // Live answers now come from the candidate; the primary is left alone.
    const auto primary_before = stack.primary().stat("requests");
    ASSERT_TRUE(primary_before);
    std::vector<HttpResponse> responses;
    ASSERT_TRUE(stack.send(10, "after-flip", false, &responses));
    EXPECT_TRUE(all_served_by(responses, kCandidate));
    auto upstream = stack.candidate().last_request();
    ASSERT_TRUE(upstream);
    EXPECT_EQ(json_string(parse_json(upstream->body), "model"), "fast-model");
    EXPECT_EQ(stack.primary().stat("requests"), primary_before);

    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "candidate"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "primary"}}, 0.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "promoted"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "shadowing"}}, 0.0));
}

TEST(ShadowTest, PoorCandidateNeverFlips) {
    ShadowStack stack({}, {"--degrade-rate", "1.0"});
    ASSERT_TRUE(stack.start());
    constexpr int kRequests = 100;
    std::vector<HttpResponse> responses;
    ASSERT_TRUE(stack.send(kRequests, "poor", false, &responses));
    EXPECT_TRUE(all_served_by(responses, kPrimary));

    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc, kLongWait));
    EXPECT_EQ(count_verdicts(doc, "fail"), static_cast<std::size_t>(kRequests))
        << json_to_string(doc);
    for (const auto& v : verdict_list(doc)->GetArray()) {
        EXPECT_EQ(json_number(v, "score"), 40.0) << json_to_string(v);
    }
    auto& gw = stack.gateway();
    auto route = gw.admin_route(kRoute);
    ASSERT_FALSE(route.HasParseError());
    EXPECT_EQ(json_string(route, "state"), "shadowing") << json_to_string(route);
    EXPECT_EQ(json_string(route, "live_target"), kPrimary) << json_to_string(route);
    EXPECT_EQ(json_number(route, "passes"), 0.0) << json_to_string(route);
    EXPECT_EQ(json_number(route, "fails"), 100.0) << json_to_string(route);
    EXPECT_EQ(json_number(route, "pass_rate"), 0.0) << json_to_string(route);
    EXPECT_TRUE(metric_is(gw, "turnout_judge_verdicts_total", {{"verdict", "fail"}}, 100.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {}, 0.0));
    EXPECT_TRUE(served_by(stack, "poor-after", kPrimary));
}

TEST(ShadowTest, DegradingTheCandidateAfterTheFlipRollsBack) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        // Every live request is still judged against the primary once promoted.
        c.route_named(kRoute).promotion.shadow_after_promotion = 1.0;
    }));
    auto& gw = stack.gateway();
    ASSERT_TRUE(stack.send_until_state("promoted", 200, "good", kLongWait));
    ASSERT_TRUE(served_by(stack, "promoted-check", kCandidate));

    // Promoted: the candidate answers live, and each request is mirrored to the primary.
    const auto primary_before = stack.primary().stat("requests");
    ASSERT_TRUE(primary_before);
    std::vector<HttpResponse> promoted;
    ASSERT_TRUE(stack.send(5, "reverse", false, &promoted));
    EXPECT_TRUE(all_served_by(promoted, kCandidate));
    EXPECT_TRUE(stack.primary().wait_for_stat(
        "requests", [&](std::int64_t v) { return v >= *primary_before + 5; }, kWait,
        ">= " + std::to_string(*primary_before + 5)));
    EXPECT_EQ(gw.route_state(kRoute), "promoted");

    ASSERT_TRUE(stack.set_candidate_degrade_rate(1.0));
    // 8 straight fails accept "pass rate <= 0.85" at 95%.
    ASSERT_TRUE(stack.send_until_state("rolled_back", 100, "degraded", kLongWait));

    rapidjson::Document event;
    ASSERT_TRUE(transition_logged(gw, "rolled_back", event));
    EXPECT_EQ(json_string(event, "trigger"), "automatic") << json_to_string(event);
    EXPECT_EQ(json_string(event, "from"), "promoted") << json_to_string(event);

    auto route = gw.admin_route(kRoute);
    ASSERT_FALSE(route.HasParseError());
    EXPECT_EQ(json_string(route, "live_target"), kPrimary) << json_to_string(route);
    EXPECT_EQ(json_number(route, "candidate_share"), 0.0) << json_to_string(route);
    std::vector<HttpResponse> responses;
    ASSERT_TRUE(stack.send(5, "after-rollback", false, &responses));
    EXPECT_TRUE(all_served_by(responses, kPrimary));

    // The newest verdicts are the degraded candidate's fails.
    auto latest = gw.admin_verdicts(kRoute, 8);
    ASSERT_NE(verdict_list(latest), nullptr);
    EXPECT_GE(count_verdicts(latest, "fail"), 1u) << json_to_string(latest);
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "candidate"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "primary"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "rolled_back"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "promoted"}}, 0.0));
}

TEST(ShadowTest, StateSurvivesARestart) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start());
    ASSERT_TRUE(stack.send_until_state("promoted", 200, "good", kLongWait));
    ASSERT_TRUE(served_by(stack, "before-restart", kCandidate));
    auto before = stack.gateway().admin_verdicts(kRoute, 1000);
    ASSERT_NE(verdict_list(before), nullptr);
    ASSERT_GE(verdict_list(before)->Size(), 52u);
    std::vector<std::string> old_ids;
    for (const auto& v : verdict_list(before)->GetArray()) {
        old_ids.push_back(json_string(v, "request_id").value_or(""));
    }
    const auto old_total = json_number(stack.gateway().admin_route(kRoute), "total_verdicts");
    ASSERT_TRUE(old_total);

    // state.path is a directory the gateway created.
    EXPECT_TRUE(std::filesystem::is_directory(stack.state_dir()));
    EXPECT_FALSE(std::filesystem::is_empty(stack.state_dir()));

    ASSERT_TRUE(stack.restart_gateway());
    auto& gw = stack.gateway();
    // No new traffic yet: what the new process shows comes from the state directory.
    auto route = gw.admin_route(kRoute);
    ASSERT_FALSE(route.HasParseError());
    EXPECT_EQ(json_string(route, "state"), "promoted") << json_to_string(route);
    EXPECT_EQ(json_string(route, "live_target"), kCandidate) << json_to_string(route);
    EXPECT_GE(json_number(route, "total_verdicts").value_or(0), *old_total)
        << json_to_string(route);
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "promoted"}}, 1.0));

    auto after = gw.admin_verdicts(kRoute, 1000);
    ASSERT_NE(verdict_list(after), nullptr);
    std::set<std::string> new_ids;
    for (const auto& v : verdict_list(after)->GetArray()) {
        new_ids.insert(json_string(v, "request_id").value_or(""));
    }
    for (const auto& id : old_ids) {
        EXPECT_TRUE(new_ids.count(id)) << "verdict of " << id << " lost in the restart";
    }
    EXPECT_TRUE(served_by(stack, "after-restart", kCandidate));
}

TEST(ShadowTest, HungCandidateNeverChangesLiveAnswers) {
    ShadowStack stack({}, {"--fault-hang"});
    constexpr int kHeld = 5;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.route_named(kRoute).timeout = "1s";
        add_held_route(c, "fast", kHeld);
    }));
    // The live answer never waits for its shadow copy: on route `held` the copies hang for good.
    ASSERT_TRUE(held_route_answers(stack, kHeld));
    EXPECT_TRUE(stack.candidate().wait_for_stat(
        "requests", [](std::int64_t v) { return v >= kHeld; }, kWait,
        ">= 5 (the held copies reached the candidate)"));

    // On route `chat` the 1 s route timeout ends each hung copy: a fail verdict.
    constexpr int kRequests = 20;
    for (int i = 0; i < kRequests; ++i) {
        auto response = stack.ask("hung-candidate-" + std::to_string(i));
        ASSERT_TRUE(response);
        EXPECT_TRUE(all_served_by({*response}, kPrimary));
    }
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc, kLongWait));
    EXPECT_EQ(count_verdicts(doc, "fail"), static_cast<std::size_t>(kRequests))
        << json_to_string(doc);
    for (const auto& v : verdict_list(doc)->GetArray()) {
        ASSERT_NE(json_at(v, "pass"), nullptr);
        EXPECT_TRUE(json_at(v, "pass")->IsFalse()) << json_to_string(v);
    }
    auto& gw = stack.gateway();
    EXPECT_TRUE(gw.wait_for_metric(
        "turnout_shadow_requests_total", {{"route", kRoute}, {"outcome", "error"}},
        [](double v) { return v == kRequests; }, "== 20"));
    EXPECT_EQ(gw.route_state(kRoute), "shadowing");
    EXPECT_TRUE(stack.candidate().wait_for_stat(
        "requests", [](std::int64_t v) { return v >= kHeld + kRequests; }, kWait, ">= 25"));
}

TEST(ShadowTest, CandidateErrorsInTheShadowAreFails) {
    ShadowStack stack({}, {"--fault-status", "500"});
    ASSERT_TRUE(stack.start());
    constexpr int kRequests = 10;
    std::vector<HttpResponse> responses;
    ASSERT_TRUE(stack.send(kRequests, "failing-candidate", false, &responses));
    EXPECT_TRUE(all_served_by(responses, kPrimary));
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc));
    EXPECT_EQ(count_verdicts(doc, "fail"), static_cast<std::size_t>(kRequests))
        << json_to_string(doc);
    auto& gw = stack.gateway();
    EXPECT_TRUE(metric_is(gw, "turnout_judge_verdicts_total", {{"verdict", "fail"}},
                          static_cast<double>(kRequests)));
    EXPECT_TRUE(metric_is(gw, "turnout_shadow_requests_total", {{"outcome", "error"}},
                          static_cast<double>(kRequests)));
    // Nothing to judge when the candidate did not answer.
    EXPECT_EQ(stack.judge().stat("requests"), 0);
}

TEST(ShadowTest, SamplingIsAShareStablePerRequestId) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        auto& r = c.route_named(kRoute);
        r.shadow.sample_rate = 0.5;
        r.promotion.mode = "shadow";  // judge only: ~60 passes must not flip the route here
        // One worker takes the queue in order: a later pair's verdict means the earlier ones
        // are in.
        r.shadow.max_inflight = 1;
    }));
    auto& gw = stack.gateway();
    constexpr int kRequests = 60;
    ASSERT_TRUE(stack.send(kRequests, "sampled"));
    ASSERT_TRUE(stack.send(kRequests, "sampled"));  // the same ids again

    // Fresh probe ids until one of them is sampled and judged.
    const auto has_probe = [](const rapidjson::Document& d) {
        const auto* list = verdict_list(d);
        if (!list) return false;
        for (const auto& v : list->GetArray()) {
            if (json_string(v, "request_id").value_or("").rfind("probe-", 0) == 0) return true;
        }
        return false;
    };
    rapidjson::Document doc;
    for (int i = 0; i < 100 && !has_probe(doc); ++i) {
        ASSERT_TRUE(served_by(stack, "probe-" + std::to_string(i), kPrimary));
        doc = gw.admin_verdicts(kRoute);
    }
    ASSERT_TRUE(wait_for(
        [&] {
            doc = gw.admin_verdicts(kRoute);
            return has_probe(doc);
        },
        kLongWait, "a verdict for a probe request"));

    std::map<std::string, int> times;
    for (const auto& v : verdict_list(doc)->GetArray()) {
        const auto id = json_string(v, "request_id").value_or("");
        if (id.rfind("sampled-", 0) == 0) ++times[id];
    }
    // About half of the ids (fixed ids: the same share on every run), each judged on both
    // rounds or on neither.
    EXPECT_GE(times.size(), 10u) << json_to_string(doc);
    EXPECT_LE(times.size(), 50u) << json_to_string(doc);
    for (const auto& [id, n] : times) EXPECT_EQ(n, 2) << id;
}

TEST(ShadowTest, HungJudgeNeverChangesLiveAnswers) {
    ShadowStack stack({}, {}, {"--fault-hang"});
    constexpr int kHeld = 5;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.route_named(kRoute).timeout = "1s";
        add_held_route(c, "judge", kHeld);
    }));
    // The live answer never waits for the judge: on route `held` the judge calls hang for good.
    ASSERT_TRUE(held_route_answers(stack, kHeld));
    EXPECT_TRUE(stack.judge().wait_for_stat(
        "requests", [](std::int64_t v) { return v >= kHeld; }, kWait,
        ">= 5 (the held pairs reached the judge)"));

    // On route `chat` the 1 s route timeout ends each hung judge call: a verdict error.
    constexpr int kRequests = 20;
    for (int i = 0; i < kRequests; ++i) {
        auto response = stack.ask("hung-judge-" + std::to_string(i));
        ASSERT_TRUE(response);
        EXPECT_TRUE(all_served_by({*response}, kPrimary));
    }
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc, kLongWait));
    // A judge timeout is a verdict error: neither pass nor fail.
    EXPECT_EQ(count_verdicts(doc, "error"), static_cast<std::size_t>(kRequests))
        << json_to_string(doc);
    for (const auto& v : verdict_list(doc)->GetArray()) {
        const auto* score = json_at(v, "score");
        EXPECT_TRUE(score && score->IsNull()) << json_to_string(v);
    }
    auto& gw = stack.gateway();
    auto route = gw.admin_route(kRoute);
    ASSERT_FALSE(route.HasParseError());
    EXPECT_EQ(json_string(route, "state"), "shadowing") << json_to_string(route);
    EXPECT_EQ(json_number(route, "samples"), 0.0) << json_to_string(route);
    EXPECT_EQ(json_number(route, "errors"), static_cast<double>(kRequests))
        << json_to_string(route);
    EXPECT_TRUE(metric_is(gw, "turnout_judge_verdicts_total", {{"verdict", "error"}},
                          static_cast<double>(kRequests)));
    // The mirrored copies themselves succeeded.
    EXPECT_TRUE(metric_is(gw, "turnout_shadow_requests_total", {{"outcome", "sent"}},
                          static_cast<double>(kRequests)));
}

TEST(ShadowTest, StreamedLiveRequestsAreShadowed) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start());
    constexpr int kRequests = 10;
    std::vector<HttpResponse> responses;
    ASSERT_TRUE(stack.send(kRequests, "stream", true, &responses));
    EXPECT_TRUE(all_served_by(responses, kPrimary));
    for (const auto& r : responses) {
        EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body;
    }
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc));
    for (const auto& v : verdict_list(doc)->GetArray()) {
        EXPECT_TRUE(json_string(v, "request_id").value_or("").rfind("stream-", 0) == 0);
        // The primary's stream, reassembled, is the same text the candidate answered whole.
        EXPECT_EQ(json_number(v, "score"), 100.0) << json_to_string(v);
        EXPECT_EQ(json_string(v, "verdict"), "pass") << json_to_string(v);
    }
    EXPECT_EQ(stack.primary().stat("streams_started"), kRequests);
    // The shadow copy is not streamed.
    EXPECT_EQ(stack.candidate().stat("requests"), kRequests);
    EXPECT_EQ(stack.candidate().stat("streams_started"), 0);
}

TEST(ShadowTest, GarbageJudgeGivesVerdictErrorsAndNoFlip) {
    ShadowStack stack({}, {}, {"--judge-garbage"});
    ASSERT_TRUE(stack.start());
    constexpr int kRequests = 80;
    std::vector<HttpResponse> responses;
    ASSERT_TRUE(stack.send(kRequests, "garbage", false, &responses));
    EXPECT_TRUE(all_served_by(responses, kPrimary));
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc, kLongWait));
    EXPECT_EQ(count_verdicts(doc, "error"), static_cast<std::size_t>(kRequests))
        << json_to_string(doc);
    for (const auto& v : verdict_list(doc)->GetArray()) {
        const auto* score = json_at(v, "score");
        EXPECT_TRUE(score && score->IsNull()) << json_to_string(v);
        EXPECT_FALSE(json_string(v, "reason").value_or("").empty()) << json_to_string(v);
    }
    auto& gw = stack.gateway();
    EXPECT_EQ(gw.route_state(kRoute), "shadowing");
    EXPECT_TRUE(metric_is(gw, "turnout_judge_verdicts_total", {{"verdict", "error"}},
                          static_cast<double>(kRequests)));
    EXPECT_TRUE(metric_is(gw, "turnout_judge_verdicts_total", {{"verdict", "pass"}}, 0.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {}, 0.0));
    EXPECT_TRUE(served_by(stack, "garbage-after", kPrimary));
}

TEST(ShadowTest, FullQueueDropsSamplesWithoutTouchingLiveAnswers) {
    // The candidate hangs for good and nothing bounds a shadow copy within the test: the one
    // copy in flight and the one queued stay there, every later sample is dropped, and a live
    // answer that waited for any of them would never come.
    ShadowStack stack({}, {"--fault-hang"});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        auto& r = c.route_named(kRoute);
        r.shadow.max_inflight = 1;
        r.shadow.queue = 1;
        r.timeout = kNeverTimeout;
        c.provider_option("fast", "timeout", kNeverTimeout);
    }));
    constexpr int kRequests = 20;
    for (int i = 0; i < kRequests; ++i) {
        auto response = stack.ask("queue-" + std::to_string(i));
        ASSERT_TRUE(response) << "request " << i << " waited for the shadow";
        EXPECT_TRUE(all_served_by({*response}, kPrimary));
    }
    auto& gw = stack.gateway();
    // At most two samples fit (one in flight, one queued).
    EXPECT_TRUE(gw.wait_for_metric(
        "turnout_shadow_requests_total", {{"route", kRoute}, {"outcome", "dropped"}},
        [](double v) { return v >= kRequests - 2; }, ">= 18"));
    // The candidate goes away: the accepted samples end as errors. Every sample is accounted
    // for: sent, dropped or error.
    stack.candidate().process().kill_now();
    EXPECT_TRUE(gw.wait_for_metric(
        "turnout_shadow_requests_total", {{"route", kRoute}},
        [](double v) { return v == kRequests; }, "sent + dropped + error == 20", kLongWait));
    auto text = gw.metrics();
    ASSERT_TRUE(text);
    EXPECT_LE(metric_value(*text, "turnout_shadow_requests_total",
                           {{"route", kRoute}, {"outcome", "sent"}})
                  .value_or(0),
              static_cast<double>(kRequests - 1));
}

}  // namespace
}  // namespace turnout::test
