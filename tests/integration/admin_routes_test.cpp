// The admin API of evaluated routes: GET /admin/routes (only routes with a candidate and a
// judge, with their evidence, their any-horizon guarantee and the side-by-side figures of both
// models), GET
// /admin/routes/NAME/verdicts (newest first, ?limit=N), and the manual commands promote,
// rollback, pin and unpin (answered with the route's JSON, refused with 409 by the mode or a
// pin, counted in turnout_route_flips_total like automatic flips), with 404 for an unknown
// route, 400 for a bad pin body and 401 without the admin token.

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <regex>
#include <string>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/shadow_stack.hpp"

namespace turnout::test {
namespace {

constexpr const char* kRoute = ShadowStack::kRoute;
constexpr const char* kPrimary = ShadowStack::kPrimaryTarget;
constexpr const char* kCandidate = ShadowStack::kCandidateTarget;
constexpr const char* kTokenEnv = "TURNOUT_TEST_ADMIN_TOKEN";
constexpr const char* kToken = "adm-3c9e1f7a5b2d8e40";

std::string route_path(const std::string& route, const std::string& action) {
    return "/admin/routes/" + route + "/" + action;
}

/// Polls /metrics until metric `name` of route `chat` (with `labels` added; summed over the
/// other labels) equals `value`: metrics are updated just after a verdict becomes visible.
::testing::AssertionResult metric_is(GatewayProcess& gateway, const std::string& name,
                                     std::map<std::string, std::string> labels, double value) {
    labels["route"] = kRoute;
    return gateway.wait_for_metric(
        name, labels, [value](double v) { return v == value; }, "== " + std::to_string(value));
}

/// 200 with the JSON of route `chat` in `state` serving `live_target`.
::testing::AssertionResult answered_route(const std::optional<HttpResponse>& response,
                                          const std::string& state,
                                          const std::string& live_target) {
    if (!response) return ::testing::AssertionFailure() << "no answer";
    if (response->status != 200) {
        return ::testing::AssertionFailure()
               << "status " << response->status << ": " << response->body;
    }
    auto doc = parse_json(response->body);
    if (doc.HasParseError() || !doc.IsObject() || json_string(doc, "name") != kRoute ||
        json_string(doc, "state") != state || json_string(doc, "live_target") != live_target) {
        return ::testing::AssertionFailure()
               << "expected route " << kRoute << " in state " << state << " serving " << live_target
               << ", got: " << response->body;
    }
    return ::testing::AssertionSuccess();
}

/// An error answer with `status` and an {"error": {...}} body.
::testing::AssertionResult is_admin_error(const std::optional<HttpResponse>& response, int status) {
    if (!response) return ::testing::AssertionFailure() << "no answer";
    if (response->status != status) {
        return ::testing::AssertionFailure() << "status " << response->status << ", expected "
                                             << status << ": " << response->body;
    }
    auto doc = parse_json(response->body);
    if (doc.HasParseError() || !json_string(doc, "error/message")) {
        return ::testing::AssertionFailure() << "no error.message in: " << response->body;
    }
    return ::testing::AssertionSuccess();
}

/// A live request to `chat`, answered 200 by `target`.
::testing::AssertionResult served_by(ShadowStack& stack, const std::string& id,
                                     const std::string& target) {
    auto response = stack.ask(id);
    if (!response) return ::testing::AssertionFailure() << "no answer to " << id;
    if (response->status != 200 || response->header("x-turnout-target") != target) {
        return ::testing::AssertionFailure()
               << id << ": status " << response->status << ", x-turnout-target '"
               << response->header("x-turnout-target") << "', expected " << target;
    }
    return ::testing::AssertionSuccess();
}

void with_prices(GatewayConfig& c) {
    c.provider_option("slow", "price", "{input_per_mtok: 15.0, output_per_mtok: 75.0}");
    c.provider_option("fast", "price", "{input_per_mtok: 0.6, output_per_mtok: 2.4}");
}

TEST(AdminRoutesTest, ListsEvaluatedRoutesWithEvidenceAndSideBySideFigures) {
    // The primary waits 300 ms before its first token, far longer than the candidate's instant
    // answer takes even on a slow machine.
    ShadowStack stack({"--ttft", "300ms"}, {});
    ASSERT_TRUE(stack.start(with_prices));
    constexpr int kRequests = 6;
    ASSERT_TRUE(stack.send(kRequests, "listed"));
    rapidjson::Document verdicts;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, verdicts));

    auto response = stack.gateway().admin_get("/admin/routes");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    auto doc = parse_json(response->body);
    ASSERT_FALSE(doc.HasParseError()) << response->body;
    const auto* routes = json_at(doc, "routes");
    ASSERT_TRUE(routes && routes->IsArray()) << response->body;
    // `plain` has neither candidate nor judge: not evaluated, not listed.
    ASSERT_EQ(routes->Size(), 1u) << response->body;
    const auto& r = (*routes)[0];
    EXPECT_EQ(json_string(r, "name"), kRoute);
    EXPECT_EQ(json_string(r, "state"), "shadowing");
    EXPECT_EQ(json_string(r, "mode"), "auto");
    EXPECT_EQ(json_string(r, "live_target"), kPrimary);
    EXPECT_EQ(json_number(r, "candidate_share"), 0.0);
    EXPECT_EQ(json_number(r, "samples"), static_cast<double>(kRequests));
    EXPECT_EQ(json_number(r, "passes"), static_cast<double>(kRequests));
    EXPECT_EQ(json_number(r, "fails"), 0.0);
    EXPECT_EQ(json_number(r, "errors"), 0.0);
    EXPECT_EQ(json_number(r, "pass_rate"), 1.0);
    const double wilson = json_number(r, "wilson_lower").value_or(-1);
    EXPECT_GT(wilson, 0.0);
    EXPECT_LT(wilson, 1.0);
    EXPECT_GT(json_number(r, "sprt_llr").value_or(0), 0.0);
    // No rejection yet: the first of the budget-spending flip tests, ln(pi^2 / (6 x 0.05)).
    const double first_accept = std::log(std::numbers::pi * std::numbers::pi / (6 * 0.05));
    EXPECT_NEAR(json_number(r, "sprt_accept").value_or(0), first_accept, 1e-9);
    EXPECT_NEAR(json_number(r, "sprt_reject").value_or(0), std::log(0.05), 1e-9);
    // The route's promise in one line, from its confidence and thresholds.
    EXPECT_EQ(json_string(r, "guarantee"),
              "false switch at most 5% at any horizon (pass rate <= 0.85), false rollback at "
              "most 5% (>= 0.9)");
    EXPECT_EQ(json_number(r, "window"), 100.0);
    EXPECT_EQ(json_number(r, "threshold"), 0.9);
    EXPECT_FALSE(json_string(r, "since").value_or("").empty());
    EXPECT_EQ(json_number(r, "total_verdicts"), static_cast<double>(kRequests));
    for (const char* side : {"primary", "candidate"}) {
        SCOPED_TRACE(side);
        const auto* s = json_at(r, side);
        ASSERT_TRUE(s && s->IsObject()) << response->body;
        EXPECT_GT(json_number(*s, "latency_ms_p50").value_or(-1), 0.0);
        EXPECT_TRUE(json_number(*s, "ttft_ms_p50").has_value());
        EXPECT_GT(json_number(*s, "output_tokens").value_or(0), 0.0);
        EXPECT_GT(json_number(*s, "cost_usd").value_or(0), 0.0);
        EXPECT_EQ(json_number(*s, "calls"), static_cast<double>(kRequests));
        EXPECT_GT(json_number(*s, "cost_per_1k_requests_usd").value_or(0), 0.0);
    }
    // The primary waits 300 ms before its first token; the candidate answers at once.
    EXPECT_GE(json_number(r, "primary/latency_ms_p50").value_or(0), 300.0);
    EXPECT_GT(json_number(r, "primary/latency_ms_p50").value_or(0),
              json_number(r, "candidate/latency_ms_p50").value_or(0));
    // Same tokens, a far lower price: the candidate saves money.
    EXPECT_GT(json_number(r, "projected_saving_per_1k_requests_usd").value_or(0), 0.0);
}

TEST(AdminRoutesTest, VerdictsAreNewestFirstAndLimited) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start());
    ASSERT_TRUE(stack.send(6, "limited"));
    rapidjson::Document all;
    ASSERT_TRUE(stack.wait_for_verdicts(6, all));
    auto& gw = stack.gateway();
    auto response = gw.admin_get(route_path(kRoute, "verdicts?limit=3"));
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    auto three = parse_json(response->body);
    const auto* list = verdict_list(three);
    ASSERT_NE(list, nullptr) << response->body;
    ASSERT_EQ(list->Size(), 3u) << response->body;
    const auto& full = *verdict_list(all);
    for (rapidjson::SizeType i = 0; i < 3; ++i) {
        EXPECT_EQ(json_string((*list)[i], "request_id"), json_string(full[i], "request_id"));
    }
    for (rapidjson::SizeType i = 1; i < full.Size(); ++i) {
        EXPECT_LE(json_string(full[i], "time").value_or(""),
                  json_string(full[i - 1], "time").value_or(""));
    }
    // An unevaluated route has no verdicts to show.
    EXPECT_TRUE(
        is_admin_error(gw.admin_get(route_path(ShadowStack::kPlainRoute, "verdicts")), 404));
}

TEST(AdminRoutesTest, ManualPromoteAndRollbackAreAppliedAndCounted) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start());
    auto& gw = stack.gateway();
    ASSERT_TRUE(served_by(stack, "before", kPrimary));

    EXPECT_TRUE(
        answered_route(gw.admin_post(route_path(kRoute, "promote")), "promoted", kCandidate));
    EXPECT_EQ(gw.route_state(kRoute), "promoted");
    EXPECT_TRUE(served_by(stack, "promoted", kCandidate));
    auto upstream = stack.candidate().last_request();
    ASSERT_TRUE(upstream);
    EXPECT_EQ(json_string(parse_json(upstream->body), "model"), "fast-model");
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "candidate"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "promoted"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "shadowing"}}, 0.0));
    // Recorded like an automatic change: logged with its trigger.
    std::string line;
    EXPECT_TRUE(gw.wait_for_log(
        std::regex("\"msg\":\"route transition\".*\"trigger\":\"manual\".*\"to\":\"promoted\""),
        kWait, &line));

    EXPECT_TRUE(
        answered_route(gw.admin_post(route_path(kRoute, "rollback")), "rolled_back", kPrimary));
    EXPECT_TRUE(served_by(stack, "rolled-back", kPrimary));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "primary"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "candidate"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "rolled_back"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "promoted"}}, 0.0));
}

TEST(AdminRoutesTest, PinWinsOverPromoteUntilUnpinned) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start());
    auto& gw = stack.gateway();

    EXPECT_TRUE(answered_route(gw.admin_post(route_path(kRoute, "pin"), R"({"target": "primary"})"),
                               "pinned", kPrimary));
    EXPECT_TRUE(is_admin_error(gw.admin_post(route_path(kRoute, "promote")), 409));
    EXPECT_TRUE(is_admin_error(gw.admin_post(route_path(kRoute, "rollback")), 409));
    EXPECT_EQ(gw.route_state(kRoute), "pinned");
    EXPECT_TRUE(served_by(stack, "pinned-primary", kPrimary));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {}, 0.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_state", {{"state", "pinned"}}, 1.0));

    // Unpinning a primary pin goes back to shadowing; then promote works.
    EXPECT_TRUE(answered_route(gw.admin_post(route_path(kRoute, "unpin")), "shadowing", kPrimary));
    EXPECT_TRUE(
        answered_route(gw.admin_post(route_path(kRoute, "promote")), "promoted", kCandidate));

    // Pinning the candidate keeps it serving, and overrides a rollback.
    EXPECT_TRUE(
        answered_route(gw.admin_post(route_path(kRoute, "pin"), R"({"target": "candidate"})"),
                       "pinned", kCandidate));
    EXPECT_TRUE(is_admin_error(gw.admin_post(route_path(kRoute, "rollback")), 409));
    EXPECT_TRUE(served_by(stack, "pinned-candidate", kCandidate));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "candidate"}}, 1.0));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "primary"}}, 0.0));
}

TEST(AdminRoutesTest, ShadowModeRefusesPromoteAndRollback) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(
        stack.start([](GatewayConfig& c) { c.route_named(kRoute).promotion.mode = "shadow"; }));
    auto& gw = stack.gateway();
    EXPECT_TRUE(is_admin_error(gw.admin_post(route_path(kRoute, "promote")), 409));
    EXPECT_TRUE(is_admin_error(gw.admin_post(route_path(kRoute, "rollback")), 409));
    EXPECT_EQ(gw.route_state(kRoute), "shadowing");
    EXPECT_TRUE(served_by(stack, "shadow-mode", kPrimary));
    auto route = gw.admin_route(kRoute);
    EXPECT_EQ(json_string(route, "mode"), "shadow") << json_to_string(route);
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {}, 0.0));
}

TEST(AdminRoutesTest, UnknownRouteIs404) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start());
    auto& gw = stack.gateway();
    EXPECT_TRUE(is_admin_error(gw.admin_get(route_path("nope", "verdicts")), 404));
    for (const char* action : {"promote", "rollback", "unpin"}) {
        SCOPED_TRACE(action);
        EXPECT_TRUE(is_admin_error(gw.admin_post(route_path("nope", action)), 404));
        // A route that exists but is not evaluated has nothing to command either.
        EXPECT_TRUE(
            is_admin_error(gw.admin_post(route_path(ShadowStack::kPlainRoute, action)), 404));
    }
    EXPECT_TRUE(is_admin_error(
        gw.admin_post(route_path("nope", "pin"), R"({"target": "candidate"})"), 404));
    EXPECT_TRUE(is_admin_error(gw.admin_post(route_path(kRoute, "explode")), 404));
    EXPECT_EQ(gw.route_state(kRoute), "shadowing");
}

TEST(AdminRoutesTest, BadPinBodyIs400) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start());
    auto& gw = stack.gateway();
    for (const std::string& body :
         {std::string(), std::string("not json"), std::string("{}"),
          std::string(R"({"target": "sideways"})"), std::string(R"({"target": 1})"),
          std::string(R"(["primary"])")}) {
        SCOPED_TRACE(body);
        EXPECT_TRUE(is_admin_error(gw.admin_post(route_path(kRoute, "pin"), body), 400));
    }
    EXPECT_EQ(gw.route_state(kRoute), "shadowing");
    EXPECT_TRUE(served_by(stack, "after-bad-pins", kPrimary));
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {}, 0.0));
}

TEST(AdminRoutesTest, AdminTokenGuardsRoutesButNotMetrics) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(
        stack.start([](GatewayConfig& c) { c.admin_token_env(kTokenEnv); }, {{kTokenEnv, kToken}}));
    auto& gw = stack.gateway();
    for (const std::string& token : {std::string(), std::string("wrong-token")}) {
        SCOPED_TRACE("token '" + token + "'");
        EXPECT_TRUE(is_admin_error(gw.admin_get("/admin/routes", token), 401));
        EXPECT_TRUE(is_admin_error(gw.admin_get(route_path(kRoute, "verdicts"), token), 401));
        EXPECT_TRUE(is_admin_error(gw.admin_post(route_path(kRoute, "promote"), {}, token), 401));
        EXPECT_TRUE(is_admin_error(
            gw.admin_post(route_path(kRoute, "pin"), R"({"target": "candidate"})", token), 401));
    }
    // Nothing changed without the token.
    EXPECT_EQ(gw.route_state(kRoute, kToken), "shadowing");
    EXPECT_TRUE(served_by(stack, "guarded", kPrimary));

    auto listed = gw.admin_get("/admin/routes", kToken);
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->status, 200) << listed->body;
    EXPECT_TRUE(answered_route(gw.admin_post(route_path(kRoute, "promote"), {}, kToken), "promoted",
                               kCandidate));
    EXPECT_TRUE(served_by(stack, "promoted-with-token", kCandidate));
    // /metrics and /healthz need no token.
    EXPECT_TRUE(metric_is(gw, "turnout_route_flips_total", {{"to", "candidate"}}, 1.0));
    auto health = gw.admin_get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace turnout::test
