// RouteTable: matching (model, headers, keys, first match), weighted targets, the candidate
// share from the route states, and the fallbacks of the decision.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "routing/route_table.hpp"

namespace turnout::routing {
namespace {

config::TargetConfig target(std::string provider, std::string model, std::uint32_t weight = 1) {
    config::TargetConfig t;
    t.provider = std::move(provider);
    t.model = std::move(model);
    t.weight = weight;
    return t;
}

config::RouteConfig route(std::string name, std::string match_model = "") {
    config::RouteConfig r;
    r.name = std::move(name);
    r.match.model = std::move(match_model);
    r.primary = target("p", "m-" + r.name);
    return r;
}

std::shared_ptr<const config::Config> config_of(std::vector<config::RouteConfig> routes) {
    auto c = std::make_shared<config::Config>();
    c->routes = std::move(routes);
    return c;
}

RequestFacts ask(std::string_view model) {
    RequestFacts facts;
    facts.model = model;
    return facts;
}

/// The name of the route the table picks, or "<none>".
std::string routed(const RouteTable& table, const RequestFacts& facts) {
    const auto decision = table.decide(facts, RouteStates{});
    const auto* matched = table.match(facts);
    EXPECT_EQ(decision ? decision->route : nullptr, matched);
    return decision ? decision->route->name : "<none>";
}

/// Accepts `observed` when it is within 5 standard deviations of a binomial(n, p): fails only
/// on a real bias (a false alarm is a 1-in-3.5-million event).
::testing::AssertionResult within_five_sigma(int observed, int n, double p) {
    const double mean = n * p;
    const double sigma = std::sqrt(n * p * (1 - p));
    if (std::abs(observed - mean) <= 5 * sigma) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << observed << " of " << n << " is more than 5 sigma (" << sigma << ") from " << mean;
}

// ---------------------------------------------------------------------------------------------
// Matching on the model

TEST(RouteTableModel, ByNameExactAndGlob) {
    const RouteTable table(
        config_of({route("coding", "smart"), route("claude", "claude-*"), route("q", "gpt-?")}));
    EXPECT_EQ(routed(table, ask("coding")), "coding");
    EXPECT_EQ(routed(table, ask("smart")), "coding");
    EXPECT_EQ(routed(table, ask("claude-opus-4-6")), "claude");
    EXPECT_EQ(routed(table, ask("gpt-4")), "q");
    EXPECT_EQ(routed(table, ask("gpt-4o")), "<none>");
    EXPECT_EQ(routed(table, ask("Smart")), "<none>");
    EXPECT_EQ(routed(table, ask("")), "<none>");
}

TEST(RouteTableModel, NameMatchesEvenWhenMatchModelSaysOtherwise) {
    const RouteTable table(config_of({route("smart", "claude-*"), route("other", "x")}));
    EXPECT_EQ(routed(table, ask("smart")), "smart");
    EXPECT_EQ(routed(table, ask("claude-3")), "smart");
    EXPECT_EQ(routed(table, ask("other")), "other");
}

TEST(RouteTableModel, FirstMatchInConfigOrderWins) {
    const RouteTable table(
        config_of({route("one", "gpt-*"), route("two", "gpt-4o"), route("gpt-4o")}));
    EXPECT_EQ(routed(table, ask("gpt-4o")), "one");
    const RouteTable glob_first(config_of({route("first", "*"), route("wanted", "x")}));
    EXPECT_EQ(routed(glob_first, ask("wanted")), "first");
}

TEST(RouteTableModel, CatchAll) {
    const RouteTable table(config_of({route("coding", "smart"), route("default")}));
    EXPECT_EQ(routed(table, ask("anything")), "default");
    EXPECT_EQ(routed(table, ask("")), "default");
    EXPECT_EQ(routed(table, ask("smart")), "coding");
    const RouteTable catch_all_first(config_of({route("all"), route("coding", "smart")}));
    EXPECT_EQ(routed(catch_all_first, ask("coding")), "all");
}

TEST(RouteTableModel, EmptyConfigMatchesNothing) {
    const RouteTable table(config_of({}));
    EXPECT_EQ(routed(table, ask("x")), "<none>");
    EXPECT_TRUE(table.model_names().empty());
}

// ---------------------------------------------------------------------------------------------
// Matching on headers

config::RouteConfig with_headers(config::RouteConfig r,
                                 std::map<std::string, std::string> headers) {
    r.match.headers = std::move(headers);
    return r;
}

RequestFacts with(std::string_view model, const HeaderList& headers) {
    RequestFacts facts = ask(model);
    facts.headers = &headers;
    return facts;
}

TEST(RouteTableHeaders, NamesCaseInsensitiveValuesCaseSensitive) {
    const RouteTable table(
        config_of({with_headers(route("team"), {{"x-team", "a"}}), route("default")}));
    EXPECT_EQ(routed(table, with("m", {{"X-Team", "a"}})), "team");
    EXPECT_EQ(routed(table, with("m", {{"x-team", "a"}})), "team");
    EXPECT_EQ(routed(table, with("m", {{"X-TEAM", "a"}})), "team");
    EXPECT_EQ(routed(table, with("m", {{"X-Team", "A"}})), "default");
    EXPECT_EQ(routed(table, with("m", {{"X-Team", "ab"}})), "default");
    EXPECT_EQ(routed(table, with("m", {{"X-Teams", "a"}})), "default");
}

TEST(RouteTableHeaders, ValuesAreGlobs) {
    const RouteTable table(
        config_of({with_headers(route("beta"), {{"x-client", "sdk-*-beta"}}),
                   with_headers(route("any"), {{"x-client", "*"}}), route("default")}));
    EXPECT_EQ(routed(table, with("m", {{"x-client", "sdk-1.2-beta"}})), "beta");
    EXPECT_EQ(routed(table, with("m", {{"x-client", "sdk-1.2"}})), "any");
    EXPECT_EQ(routed(table, with("m", {{"x-client", ""}})), "any");
    EXPECT_EQ(routed(table, with("m", {})), "default");
}

TEST(RouteTableHeaders, AllMustMatch) {
    const RouteTable table(config_of(
        {with_headers(route("both"), {{"x-team", "a"}, {"x-env", "prod"}}), route("default")}));
    EXPECT_EQ(routed(table, with("m", {{"x-env", "prod"}, {"X-Team", "a"}})), "both");
    EXPECT_EQ(routed(table, with("m", {{"x-team", "a"}})), "default");
    EXPECT_EQ(routed(table, with("m", {{"x-env", "prod"}})), "default");
    EXPECT_EQ(routed(table, with("m", {{"x-team", "a"}, {"x-env", "dev"}})), "default");
}

TEST(RouteTableHeaders, NoHeadersAtAll) {
    const RouteTable table(
        config_of({with_headers(route("team"), {{"x-team", "*"}}), route("default")}));
    EXPECT_EQ(routed(table, ask("m")), "default");
}

TEST(RouteTableHeaders, AnyOccurrenceOfARepeatedHeaderMayMatch) {
    const RouteTable table(
        config_of({with_headers(route("team"), {{"x-team", "a"}}), route("default")}));
    EXPECT_EQ(routed(table, with("m", {{"x-team", "b"}, {"X-Team", "a"}})), "team");
}

TEST(RouteTableHeaders, UpperCaseNamesInACodeBuiltConfig) {
    const RouteTable table(
        config_of({with_headers(route("team"), {{"X-Team", "a"}}), route("default")}));
    EXPECT_EQ(routed(table, with("m", {{"x-team", "a"}})), "team");
}

TEST(RouteTableHeaders, ModelMustMatchToo) {
    const RouteTable table(
        config_of({with_headers(route("coding", "smart"), {{"x-team", "a"}}), route("default")}));
    EXPECT_EQ(routed(table, with("smart", {{"x-team", "a"}})), "coding");
    EXPECT_EQ(routed(table, with("other", {{"x-team", "a"}})), "default");
}

// ---------------------------------------------------------------------------------------------
// Matching on client keys

config::RouteConfig with_keys(config::RouteConfig r, std::vector<std::string> keys) {
    r.match.keys = std::move(keys);
    return r;
}

RequestFacts as_key(std::string_view model, std::string_view key_name) {
    RequestFacts facts = ask(model);
    facts.key_name = key_name;
    return facts;
}

TEST(RouteTableKeys, OnlyListedKeys) {
    const RouteTable table(
        config_of({with_keys(route("teams", "smart"), {"team-a", "team-b"}), route("default")}));
    EXPECT_EQ(routed(table, as_key("smart", "team-a")), "teams");
    EXPECT_EQ(routed(table, as_key("smart", "team-b")), "teams");
    EXPECT_EQ(routed(table, as_key("smart", "team-c")), "default");
    EXPECT_EQ(routed(table, as_key("smart", "")), "default");
    EXPECT_EQ(routed(table, as_key("smart", "TEAM-A")), "default");
}

TEST(RouteTableKeys, NoKeysListedMatchesAnyKeyAndNone) {
    const RouteTable table(config_of({route("open", "smart")}));
    EXPECT_EQ(routed(table, as_key("smart", "team-a")), "open");
    EXPECT_EQ(routed(table, as_key("smart", "")), "open");
}

TEST(RouteTableKeys, AllConditionsTogether) {
    const RouteTable table(
        config_of({with_headers(with_keys(route("coding", "smart"), {"team-a"}), {{"x-team", "a"}}),
                   with_keys(route("fallthrough", "smart"), {"team-b"})}));
    const HeaderList team_a = {{"X-Team", "a"}};
    RequestFacts facts = with("smart", team_a);
    facts.key_name = "team-a";
    EXPECT_EQ(routed(table, facts), "coding");
    facts.key_name = "team-b";
    EXPECT_EQ(routed(table, facts), "fallthrough");
    facts.key_name = "";
    EXPECT_EQ(routed(table, facts), "<none>");
}

// ---------------------------------------------------------------------------------------------
// Weighted targets

config::RouteConfig split(std::string name, std::vector<config::TargetConfig> targets) {
    config::RouteConfig r;
    r.name = std::move(name);
    r.targets = std::move(targets);
    return r;
}

TEST(RouteTableWeights, ProportionalOverTenThousandDraws) {
    const RouteTable table(
        config_of({split("s", {target("a", "big", 90), target("b", "small", 10)})}));
    constexpr int kDraws = 10000;
    int small = 0;
    for (int i = 0; i < kDraws; ++i) {
        const auto d = table.decide(ask("s"), {});
        ASSERT_TRUE(d);
        small += d->target.model == "small" ? 1 : 0;
    }
    EXPECT_TRUE(within_five_sigma(small, kDraws, 0.10));
}

TEST(RouteTableWeights, ProportionalOverClientIds) {
    const RouteTable table(config_of(
        {split("s", {target("a", "one", 1), target("b", "two", 2), target("c", "seven", 7)})}));
    constexpr int kDraws = 10000;
    std::map<std::string, int> counts;
    for (int i = 0; i < kDraws; ++i) {
        const std::string id = "client-" + std::to_string(i);
        RequestFacts facts = ask("s");
        facts.request_id = id;
        facts.request_id_from_client = true;
        ++counts[table.decide(facts, {})->target.model];
    }
    EXPECT_TRUE(within_five_sigma(counts["one"], kDraws, 0.1));
    EXPECT_TRUE(within_five_sigma(counts["two"], kDraws, 0.2));
    EXPECT_TRUE(within_five_sigma(counts["seven"], kDraws, 0.7));
}

TEST(RouteTableWeights, StablePerClientRequestId) {
    const RouteTable table(config_of({split("s", {target("a", "x", 50), target("b", "y", 50)})}));
    int y = 0;
    for (int i = 0; i < 200; ++i) {
        const std::string id = "retry-" + std::to_string(i);
        RequestFacts facts = ask("s");
        facts.request_id = id;
        facts.request_id_from_client = true;
        const std::string first = table.decide(facts, {})->target.model;
        for (int again = 0; again < 20; ++again) {
            EXPECT_EQ(table.decide(facts, {})->target.model, first) << id;
        }
        y += first == "y" ? 1 : 0;
    }
    EXPECT_TRUE(within_five_sigma(y, 200, 0.5));
}

TEST(RouteTableWeights, GatewayMadeIdsAreNotPinned) {
    const RouteTable table(config_of({split("s", {target("a", "x", 50), target("b", "y", 50)})}));
    RequestFacts facts = ask("s");
    facts.request_id = "gateway-made";
    facts.request_id_from_client = false;
    std::map<std::string, int> seen;
    // Both sides show up: all 200 on one side would be a 2^-199 event.
    for (int i = 0; i < 200; ++i) ++seen[table.decide(facts, {})->target.model];
    EXPECT_EQ(seen.size(), 2u);
}

TEST(RouteTableWeights, ZeroWeightNeverPicked) {
    const RouteTable table(config_of({split("s", {target("a", "x", 0), target("b", "y", 3)})}));
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(table.decide(ask("s"), {})->target.model, "y");
}

TEST(RouteTableWeights, SingleTarget) {
    const RouteTable table(config_of({split("s", {target("a", "only", 5)})}));
    EXPECT_EQ(table.decide(ask("s"), {})->target.model, "only");
}

// ---------------------------------------------------------------------------------------------
// The candidate share from the route states

config::RouteConfig with_candidate(std::string name) {
    config::RouteConfig r = route(name, name);  // not a catch-all: each route reachable by its name
    r.primary = target("opus", "slow");
    r.candidate = target("spark", "fast");
    return r;
}

RequestFacts with_id(std::string_view model, std::string_view id) {
    RequestFacts facts = ask(model);
    facts.request_id = id;
    return facts;
}

/// How many of `n` distinct ids the candidate serves.
int candidate_count(const RouteTable& table, const RouteStates& states, int n) {
    int count = 0;
    for (int i = 0; i < n; ++i) {
        const std::string id = "req-" + std::to_string(i);
        count += table.decide(with_id("r", id), states)->serving_candidate ? 1 : 0;
    }
    return count;
}

TEST(RouteTableServing, AbsentStateMeansPrimary) {
    const RouteTable table(config_of({with_candidate("r")}));
    EXPECT_EQ(candidate_count(table, {}, 1000), 0);
    EXPECT_EQ(candidate_count(table, {{"other", RouteServing{1.0}}}, 1000), 0);
    const auto d = table.decide(with_id("r", "x"), {});
    EXPECT_EQ(d->target.model, "slow");
    EXPECT_FALSE(d->serving_candidate);
}

TEST(RouteTableServing, ShareZeroAndOne) {
    const RouteTable table(config_of({with_candidate("r")}));
    EXPECT_EQ(candidate_count(table, {{"r", RouteServing{0.0}}}, 1000), 0);
    EXPECT_EQ(candidate_count(table, {{"r", RouteServing{1.0}}}, 1000), 1000);
    const auto d = table.decide(with_id("r", "x"), {{"r", RouteServing{1.0}}});
    EXPECT_EQ(d->target.provider, "spark");
    EXPECT_EQ(d->target.model, "fast");
    EXPECT_TRUE(d->serving_candidate);
}

TEST(RouteTableServing, OutOfRangeSharesAreClamped) {
    const RouteTable table(config_of({with_candidate("r")}));
    EXPECT_EQ(candidate_count(table, {{"r", RouteServing{-0.5}}}, 500), 0);
    EXPECT_EQ(candidate_count(table, {{"r", RouteServing{std::nan("")}}}, 500), 0);
    EXPECT_EQ(candidate_count(table, {{"r", RouteServing{7.0}}}, 500), 500);
}

TEST(RouteTableServing, RampShareWithinTolerance) {
    const RouteTable table(config_of({with_candidate("r")}));
    constexpr int kIds = 10000;
    EXPECT_TRUE(
        within_five_sigma(candidate_count(table, {{"r", RouteServing{0.3}}}, kIds), kIds, 0.3));
}

TEST(RouteTableServing, StablePerIdAndMonotoneAcrossRampSteps) {
    const RouteTable table(config_of({with_candidate("r")}));
    const RouteStates low{{"r", RouteServing{0.3}}};
    const RouteStates high{{"r", RouteServing{0.6}}};
    for (int i = 0; i < 2000; ++i) {
        const std::string id = "conv-" + std::to_string(i);
        const bool at_low = table.decide(with_id("r", id), low)->serving_candidate;
        EXPECT_EQ(table.decide(with_id("r", id), low)->serving_candidate, at_low) << id;
        if (at_low) {
            EXPECT_TRUE(table.decide(with_id("r", id), high)->serving_candidate) << id;
        }
    }
}

TEST(RouteTableServing, EmptyIdDrawsFromThePrng) {
    const RouteTable table(config_of({with_candidate("r")}));
    int candidate = 0;
    constexpr int kDraws = 10000;
    for (int i = 0; i < kDraws; ++i) {
        candidate += table.decide(ask("r"), {{"r", RouteServing{0.3}}})->serving_candidate;
    }
    EXPECT_TRUE(within_five_sigma(candidate, kDraws, 0.3));
}

TEST(RouteTableServing, ShareWithoutCandidateServesPrimary) {
    const RouteTable table(config_of({route("r")}));
    const auto d = table.decide(with_id("r", "x"), {{"r", RouteServing{1.0}}});
    EXPECT_FALSE(d->serving_candidate);
    EXPECT_EQ(d->target.model, "m-r");
}

TEST(RouteTableServing, RoutesAreIndependent) {
    // Two routes at the same share must not serve the candidate for exactly the same ids.
    const RouteTable table(config_of({with_candidate("a"), with_candidate("b")}));
    const RouteStates states{{"a", RouteServing{0.5}}, {"b", RouteServing{0.5}}};
    int both = 0;
    constexpr int kIds = 10000;
    for (int i = 0; i < kIds; ++i) {
        const std::string id = "id-" + std::to_string(i);
        both += table.decide(with_id("a", id), states)->serving_candidate &&
                table.decide(with_id("b", id), states)->serving_candidate;
    }
    EXPECT_TRUE(within_five_sigma(both, kIds, 0.25));
}

TEST(RouteStatesValue, SetAndGet) {
    RouteStates states;
    EXPECT_TRUE(states.empty());
    EXPECT_EQ(states.get("r").candidate_share, 0.0);
    states.set("r", RouteServing{0.5});
    EXPECT_FALSE(states.empty());
    EXPECT_EQ(states.get("r").candidate_share, 0.5);
    states.set("r", RouteServing{1.0});
    EXPECT_EQ(states.get("r").candidate_share, 1.0);
    EXPECT_EQ(states.get("R").candidate_share, 0.0);
}

// ---------------------------------------------------------------------------------------------
// Fallbacks

std::vector<std::string> models_of(const std::vector<config::TargetConfig>& targets) {
    std::vector<std::string> models;
    for (const auto& t : targets) models.push_back(t.provider + "/" + t.model);
    return models;
}

TEST(RouteTableFallbacks, ConfiguredOrderWhenThePrimaryServes) {
    config::RouteConfig r = with_candidate("r");
    r.fallbacks = {target("f1", "a"), target("f2", "b"), target("f3", "c")};
    const RouteTable table(config_of({r}));
    const auto d = table.decide(with_id("r", "x"), {});
    EXPECT_EQ(models_of(d->fallbacks), (std::vector<std::string>{"f1/a", "f2/b", "f3/c"}));
}

TEST(RouteTableFallbacks, PrimaryFirstWhenTheCandidateServes) {
    config::RouteConfig r = with_candidate("r");
    r.fallbacks = {target("f1", "a"), target("f2", "b")};
    const RouteTable table(config_of({r}));
    const auto d = table.decide(with_id("r", "x"), {{"r", RouteServing{1.0}}});
    EXPECT_EQ(d->target.model, "fast");
    EXPECT_EQ(models_of(d->fallbacks), (std::vector<std::string>{"opus/slow", "f1/a", "f2/b"}));
}

TEST(RouteTableFallbacks, RepeatsOfTheTargetOrAnEarlierFallbackAreDropped) {
    // The contract's example: the candidate is also the primary's fallback.
    config::RouteConfig r = with_candidate("r");
    r.fallbacks = {target("spark", "fast"), target("x", "y"), target("x", "y")};
    const RouteTable table(config_of({r}));
    EXPECT_EQ(models_of(table.decide(with_id("r", "x"), {})->fallbacks),
              (std::vector<std::string>{"spark/fast", "x/y"}));
    EXPECT_EQ(models_of(table.decide(with_id("r", "x"), {{"r", RouteServing{1.0}}})->fallbacks),
              (std::vector<std::string>{"opus/slow", "x/y"}));
}

TEST(RouteTableFallbacks, SameModelWithDifferentExtrasIsADifferentUpstream) {
    config::RouteConfig r = route("r");
    r.primary = target("opus", "m");
    r.primary->extra_body_json = R"({"speed":"fast"})";
    r.fallbacks = {target("opus", "m")};
    const RouteTable table(config_of({r}));
    const auto d = table.decide(ask("r"), {});
    EXPECT_EQ(d->target.extra_body_json, R"({"speed":"fast"})");
    ASSERT_EQ(d->fallbacks.size(), 1u);
    EXPECT_EQ(d->fallbacks[0].extra_body_json, "");
}

TEST(RouteTableFallbacks, WeightedPickIsThePrimarySide) {
    config::RouteConfig r = split("r", {target("a", "x", 1), target("b", "y", 1)});
    r.candidate = target("spark", "fast");
    r.fallbacks = {target("f", "z")};
    const RouteTable table(config_of({r}));
    for (int i = 0; i < 50; ++i) {
        const std::string id = "w-" + std::to_string(i);
        RequestFacts facts = with_id("r", id);
        facts.request_id_from_client = true;
        const auto primary = table.decide(facts, {});
        const auto candidate = table.decide(facts, {{"r", RouteServing{1.0}}});
        ASSERT_EQ(candidate->fallbacks.size(), 2u);
        EXPECT_EQ(candidate->fallbacks[0].model, primary->target.model);
        EXPECT_EQ(candidate->fallbacks[1].model, "z");
    }
}

// ---------------------------------------------------------------------------------------------
// The table itself

TEST(RouteTableDecision, CarriesTheRouteSettingsAndTargetExtras) {
    config::RouteConfig r = with_candidate("r");
    r.primary->headers = {{"anthropic-beta", "fast-mode-2026-02-01"}};
    r.primary->extra_body_json = R"({"speed":"fast"})";
    r.shadow.sample_rate = 0.25;
    r.judge.model = "judge";
    r.promotion.threshold = 0.8;
    r.retries.attempts = 3;
    auto config = config_of({r});
    const RouteTable table(config);
    const auto d = table.decide(ask("r"), {});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->route, &config->routes[0]);
    EXPECT_EQ(d->route->shadow.sample_rate, 0.25);
    EXPECT_EQ(d->route->judge.model, "judge");
    EXPECT_EQ(d->route->promotion.threshold, 0.8);
    EXPECT_EQ(d->route->retries.attempts, 3u);
    EXPECT_EQ(d->route->candidate->model, "fast");
    EXPECT_EQ(d->target.headers.at("anthropic-beta"), "fast-mode-2026-02-01");
    EXPECT_EQ(d->target.extra_body_json, R"({"speed":"fast"})");
}

TEST(RouteTableDecision, KeepsItsConfigAlive) {
    auto config = config_of({route("r")});
    const std::weak_ptr<const config::Config> weak = config;
    const auto table = std::make_unique<RouteTable>(std::move(config));
    EXPECT_FALSE(weak.expired());
    EXPECT_EQ(&table->config(), weak.lock().get());
    EXPECT_EQ(table->decide(ask("r"), {})->route->name, "r");
}

TEST(RouteTableDecision, ModelNames) {
    const RouteTable table(config_of({route("coding", "smart"), route("claude", "claude-*"),
                                      route("smart", "smart"), route("default")}));
    EXPECT_EQ(table.model_names(),
              (std::vector<std::string>{"coding", "smart", "claude", "default"}));
}

TEST(RouteTableDecision, ConcurrentCallersGetTheSameStableAnswers) {
    config::RouteConfig r =
        split("r", {target("a", "x", 1), target("b", "y", 1), target("c", "z", 1)});
    r.candidate = target("spark", "fast");
    const RouteTable table(config_of({r}));
    const RouteStates states{{"r", RouteServing{0.5}}};
    auto answers = [&] {
        std::vector<std::string> out;
        for (int i = 0; i < 2000; ++i) {
            const std::string id = "c-" + std::to_string(i);
            RequestFacts facts = with_id("r", id);
            facts.request_id_from_client = true;
            const auto d = table.decide(facts, states);
            std::string answer = d->target.model;
            for (const auto& fallback : d->fallbacks) answer += "|" + fallback.model;
            out.push_back(std::move(answer));
            table.decide(ask("r"), states);  // the PRNG path, on every thread at once
        }
        return out;
    };
    const auto expected = answers();
    std::vector<std::vector<std::string>> results(4);
    std::vector<std::thread> threads;
    for (auto& result : results) threads.emplace_back([&result, &answers] { result = answers(); });
    for (auto& t : threads) t.join();
    for (const auto& result : results) EXPECT_EQ(result, expected);
}

TEST(RouteTableDecision, RejectsConfigsItCannotServe) {
    EXPECT_THROW(RouteTable(nullptr), std::invalid_argument);
    config::RouteConfig empty;
    empty.name = "empty";
    EXPECT_THROW(RouteTable(config_of({empty})), std::invalid_argument);
    EXPECT_THROW(RouteTable(config_of({split("zero", {target("a", "x", 0)})})),
                 std::invalid_argument);
}

}  // namespace
}  // namespace turnout::routing
