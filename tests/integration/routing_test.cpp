// Routing rules through the real gateway: first match wins on `match.model` (exact or glob),
// `match.headers` (all must match, glob values, case-insensitive names) and `match.keys`; a
// route also answers to its own name; weighted `targets` (stable per x-request-id); no match is
// 404 model_not_found; GET /v1/models lists route names and exact model names.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

constexpr const char* kTeamAKey = "sk-team-a-0c4f9e2b7d1a";
constexpr const char* kTeamBKey = "sk-team-b-5e8a3d6c0f2b";

/// The `model` of the last request the simulator received ("" when none).
std::string upstream_model(SimulatorProcess& sim) {
    auto recorded = sim.last_request();
    if (!recorded) return "";
    return json_string(parse_json(recorded->body), "model").value_or("");
}

/// Sends a chat request for `model` and checks that route `route` answered with `model_name`
/// on provider `sim`, and that the simulator received `model_name`.
::testing::AssertionResult routed_to(GatewayStack& stack, const std::string& model,
                                     const Headers& headers, const std::string& route,
                                     const std::string& model_name) {
    auto response = stack.gateway().chat(chat_body(model), headers);
    if (!response) return ::testing::AssertionFailure() << "no response for model " << model;
    if (response->status != 200) {
        return ::testing::AssertionFailure()
               << "status " << response->status << " for model " << model << ": " << response->body;
    }
    if (response->header("x-turnout-route") != route) {
        return ::testing::AssertionFailure()
               << "model " << model << " went to route '" << response->header("x-turnout-route")
               << "', expected '" << route << "'";
    }
    if (response->header("x-turnout-target") != "sim/" + model_name) {
        return ::testing::AssertionFailure()
               << "x-turnout-target is '" << response->header("x-turnout-target")
               << "', expected 'sim/" << model_name << "'";
    }
    auto seen = upstream_model(stack.sim());
    if (seen != model_name) {
        return ::testing::AssertionFailure()
               << "the upstream received model '" << seen << "', expected '" << model_name << "'";
    }
    return ::testing::AssertionSuccess();
}

RouteYaml route_to(const std::string& name, const std::string& match_model,
                   const std::string& upstream_model_name) {
    RouteYaml r;
    r.name = name;
    r.match_model = match_model;
    r.primary = {"sim", upstream_model_name};
    return r;
}

TEST(RoutingTest, HeadersSelectTheRoute) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.routes().clear();
        RouteYaml team_a = route_to("team-a", "chat", "model-a");
        team_a.match_headers = {{"x-team", "a"}};
        c.route(team_a);
        // All headers must match; values are globs.
        RouteYaml gold = route_to("team-b-gold", "chat", "model-gold");
        gold.match_headers = {{"x-team", "b"}, {"x-tier", "gold-*"}};
        c.route(gold);
        c.route(route_to("others", "chat", "model-other"));
    }));
    EXPECT_TRUE(routed_to(stack, "chat", {{"x-team", "a"}}, "team-a", "model-a"));
    EXPECT_TRUE(routed_to(stack, "chat", {{"X-Team", "a"}}, "team-a", "model-a"))
        << "header names match case-insensitively";
    EXPECT_TRUE(routed_to(stack, "chat", {{"x-team", "b"}}, "others", "model-other"));
    EXPECT_TRUE(routed_to(stack, "chat", {}, "others", "model-other"));
    EXPECT_TRUE(routed_to(stack, "chat", {{"x-team", "b"}, {"x-tier", "gold-1"}}, "team-b-gold",
                          "model-gold"));
    EXPECT_TRUE(routed_to(stack, "chat", {{"X-TIER", "gold-premium"}, {"x-team", "b"}},
                          "team-b-gold", "model-gold"));
    EXPECT_TRUE(routed_to(stack, "chat", {{"x-tier", "gold-1"}}, "others", "model-other"))
        << "one of two headers is not enough";
    EXPECT_TRUE(
        routed_to(stack, "chat", {{"x-team", "b"}, {"x-tier", "silver"}}, "others", "model-other"))
        << "the glob gold-* must not match silver";
    // The header decides the route, the model still has to match: no route for another model.
    auto other = stack.gateway().chat(chat_body("not-chat"), {{"x-team", "a"}});
    EXPECT_TRUE(is_openai_error(other, 404, "model_not_found", "invalid_request_error"));
}

TEST(RoutingTest, GlobModelsAndRouteNamesSelectTheRoute) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.routes().clear();
        c.route(route_to("anthropic-models", "claude-*", "claude-upstream"));
        c.route(route_to("exact", "gpt-4o", "gpt-upstream"));
    }));
    EXPECT_TRUE(routed_to(stack, "claude-opus-4-6", {}, "anthropic-models", "claude-upstream"));
    EXPECT_TRUE(routed_to(stack, "claude-haiku", {}, "anthropic-models", "claude-upstream"));
    EXPECT_TRUE(routed_to(stack, "gpt-4o", {}, "exact", "gpt-upstream"));
    // A route also answers to its own name.
    EXPECT_TRUE(routed_to(stack, "anthropic-models", {}, "anthropic-models", "claude-upstream"));
    EXPECT_TRUE(routed_to(stack, "exact", {}, "exact", "gpt-upstream"));
    auto served = stack.sim().stat("requests");
    ASSERT_TRUE(served);

    // No match: 404 in OpenAI's shape, and nothing reaches the upstream.
    for (const char* model : {"claude", "gpt-4o-mini", "my-claude-x"}) {
        SCOPED_TRACE(std::string("model '") + model + "'");
        auto response = stack.gateway().chat(chat_body(model));
        EXPECT_TRUE(is_openai_error(response, 404, "model_not_found", "invalid_request_error"));
    }
    EXPECT_EQ(stack.sim().stat("requests"), served) << "an unrouted request reached the upstream";
}

TEST(RoutingTest, FirstMatchWinsAndARouteWithoutModelMatchesAnyModel) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.routes().clear();
        RouteYaml team_x = route_to("team-x", "", "model-x");  // headers only: any model
        team_x.match_headers = {{"x-team", "x"}};
        c.route(team_x);
        c.route(route_to("smart", "gpt-smart", "model-smart"));
        c.route(route_to("default", "", "model-default"));  // no match block: everything else
    }));
    EXPECT_TRUE(routed_to(stack, "anything-at-all", {{"x-team", "x"}}, "team-x", "model-x"));
    EXPECT_TRUE(routed_to(stack, "gpt-smart", {{"x-team", "x"}}, "team-x", "model-x"))
        << "the first matching route wins";
    EXPECT_TRUE(routed_to(stack, "gpt-smart", {}, "smart", "model-smart"));
    EXPECT_TRUE(routed_to(stack, "whatever-else", {}, "default", "model-default"));
    EXPECT_TRUE(routed_to(stack, "whatever-else", {{"x-team", "y"}}, "default", "model-default"));
}

TEST(RoutingTest, ClientKeysSelectTheRoute) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start(
        [](GatewayConfig& c) {
            c.client_key("team-a", "TEAM_A_KEY").client_key("team-b", "TEAM_B_KEY");
            c.routes().clear();
            RouteYaml for_a = route_to("for-team-a", "chat", "model-a");
            for_a.match_keys = {"team-a"};
            c.route(for_a);
            c.route(route_to("for-the-rest", "chat", "model-rest"));
        },
        {{"TEAM_A_KEY", kTeamAKey}, {"TEAM_B_KEY", kTeamBKey}}));
    const std::string bearer_a = std::string("Bearer ") + kTeamAKey;
    const std::string bearer_b = std::string("Bearer ") + kTeamBKey;
    EXPECT_TRUE(routed_to(stack, "chat", {{"Authorization", bearer_a}}, "for-team-a", "model-a"));
    EXPECT_TRUE(routed_to(stack, "chat", {{"x-api-key", kTeamAKey}}, "for-team-a", "model-a"));
    EXPECT_TRUE(
        routed_to(stack, "chat", {{"Authorization", bearer_b}}, "for-the-rest", "model-rest"));
    EXPECT_TRUE(routed_to(stack, "chat", {{"x-api-key", kTeamBKey}}, "for-the-rest", "model-rest"));
}

/// Two simulators behind providers `a` and `b`, and a route `split` with weighted targets.
class WeightedRoutingTest : public ::testing::Test {
  protected:
    ::testing::AssertionResult start(std::uint32_t weight_a, std::uint32_t weight_b) {
        if (auto ok = sim_a_.start(); !ok) return ok;
        if (auto ok = sim_b_.start(); !ok) return ok;
        GatewayConfig config;
        for (auto [name, sim] : {std::pair<const char*, SimulatorProcess*>{"a", &sim_a_},
                                 std::pair<const char*, SimulatorProcess*>{"b", &sim_b_}}) {
            ProviderYaml p;
            p.name = name;
            p.base_url = sim->base_url();
            config.provider(p);
        }
        RouteYaml split;
        split.name = "split";
        split.targets = {{"a", "model-a", weight_a}, {"b", "model-b", weight_b}};
        config.route(split);
        GatewayOptions options;
        options.yaml = config.yaml();
        gateway_ = std::make_unique<GatewayProcess>(options);
        return gateway_->start();
    }

    /// Sends `count` requests with distinct x-request-ids; returns x-turnout-target -> count.
    std::map<std::string, int> spread(int count, const std::string& id_prefix) {
        std::map<std::string, int> targets;
        for (int i = 0; i < count; ++i) {
            auto response = gateway_->chat(chat_body("split"),
                                           {{"x-request-id", id_prefix + std::to_string(i)}});
            EXPECT_TRUE(response);
            if (!response) break;
            EXPECT_EQ(response->status, 200) << response->body;
            EXPECT_EQ(response->header("x-turnout-route"), "split");
            ++targets[response->header("x-turnout-target")];
        }
        return targets;
    }

    SimulatorProcess sim_a_{{"--ttft", "0ms", "--tokens", "2"}};
    SimulatorProcess sim_b_{{"--ttft", "0ms", "--tokens", "2"}};
    std::unique_ptr<GatewayProcess> gateway_;
};

TEST_F(WeightedRoutingTest, FiftyFiftySplitReachesBothTargets) {
    ASSERT_TRUE(start(50, 50));
    auto targets = spread(200, "weights-50-50-");
    auto a = sim_a_.stat("requests");
    auto b = sim_b_.stat("requests");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a + *b, 200);
    EXPECT_GE(*a, 60);
    EXPECT_LE(*a, 140);
    EXPECT_GE(*b, 60);
    EXPECT_LE(*b, 140);
    // The response header names the simulator that really answered.
    EXPECT_EQ(targets["a/model-a"], *a);
    EXPECT_EQ(targets["b/model-b"], *b);
    EXPECT_EQ(targets.size(), 2u);
    // Each upstream receives its target's model name.
    EXPECT_EQ(upstream_model(sim_a_), "model-a");
    EXPECT_EQ(upstream_model(sim_b_), "model-b");
}

TEST_F(WeightedRoutingTest, UnevenSplitFollowsTheWeights) {
    ASSERT_TRUE(start(90, 10));
    spread(200, "weights-90-10-");
    auto a = sim_a_.stat("requests");
    auto b = sim_b_.stat("requests");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a + *b, 200);
    // Expected 20 on b (binomial sd ~4.2): 4..45 is far outside chance.
    EXPECT_GE(*b, 4);
    EXPECT_LE(*b, 45);
}

TEST_F(WeightedRoutingTest, TheSameRequestIdAlwaysLandsOnTheSameTarget) {
    ASSERT_TRUE(start(50, 50));
    std::set<std::string> seen_overall;
    for (int id = 0; id < 6; ++id) {
        const std::string request_id = "sticky-" + std::to_string(id);
        SCOPED_TRACE(request_id);
        std::set<std::string> targets;
        for (int i = 0; i < 10; ++i) {
            auto response = gateway_->chat(chat_body("split"), {{"x-request-id", request_id}});
            ASSERT_TRUE(response);
            ASSERT_EQ(response->status, 200) << response->body;
            EXPECT_EQ(response->header("x-request-id"), request_id);
            targets.insert(response->header("x-turnout-target"));
        }
        EXPECT_EQ(targets.size(), 1u) << "one request id went to several targets";
        seen_overall.insert(targets.begin(), targets.end());
    }
    auto a = sim_a_.stat("requests");
    auto b = sim_b_.stat("requests");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a + *b, 60);
    EXPECT_EQ(*a % 10, 0) << "requests of one id were split across the simulators";
}

TEST(RoutingModelsTest, ModelsListsEveryRouteNameAndExactModelOnce) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.routes().clear();
        RouteYaml team_a = route_to("team-a", "chat", "model-a");
        team_a.match_headers = {{"x-team", "a"}};
        c.route(team_a);
        c.route(route_to("chat-default", "chat", "model-other"));
        c.route(route_to("anthropic-models", "claude-*", "claude-upstream"));
        RouteYaml split;
        split.name = "split";
        split.targets = {{"sim", "model-a", 50}, {"sim", "model-b", 50}};
        c.route(split);
    }));
    auto response = stack.gateway().request("GET", "/v1/models");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    auto doc = parse_json(response->body);
    ASSERT_FALSE(doc.HasParseError()) << response->body;
    EXPECT_EQ(json_string(doc, "object"), "list") << response->body;
    const auto* data = json_at(doc, "data");
    ASSERT_TRUE(data && data->IsArray()) << response->body;
    std::multiset<std::string> ids;
    for (const auto& model : data->GetArray()) {
        auto id = json_string(model, "id");
        ASSERT_TRUE(id) << response->body;
        ids.insert(*id);
    }
    for (const char* expected : {"team-a", "chat-default", "anthropic-models", "split", "chat"}) {
        EXPECT_EQ(ids.count(expected), 1u) << expected << " once in " << response->body;
    }
    EXPECT_EQ(ids.count("claude-*"), 0u) << "globs are not model names: " << response->body;
    EXPECT_EQ(ids.count("model-a"), 0u)
        << "upstream model names are not listed: " << response->body;
    EXPECT_EQ(ids.size(), 5u) << response->body;
}

}  // namespace
}  // namespace turnout::test
