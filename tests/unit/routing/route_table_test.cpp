#include "routing/route_table.hpp"

#include <gtest/gtest.h>

namespace turnout::routing {
namespace {

TEST(GlobMatch, ExactWithoutWildcards) {
    EXPECT_TRUE(glob_match("smart", "smart"));
    EXPECT_FALSE(glob_match("smart", "smarter"));
    EXPECT_FALSE(glob_match("smart", "smar"));
    EXPECT_FALSE(glob_match("smart", ""));
    EXPECT_TRUE(glob_match("", ""));
    EXPECT_FALSE(glob_match("", "x"));
}

TEST(GlobMatch, IsCaseSensitive) {
    EXPECT_FALSE(glob_match("Smart", "smart"));
    EXPECT_FALSE(glob_match("claude-*", "Claude-opus"));
}

TEST(GlobMatch, StarMatchesAnyRunIncludingNone) {
    EXPECT_TRUE(glob_match("claude-*", "claude-opus-4-6"));
    EXPECT_TRUE(glob_match("claude-*", "claude-"));
    EXPECT_FALSE(glob_match("claude-*", "claude"));
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("*", "anything"));
    EXPECT_TRUE(glob_match("*-mini", "gpt-4o-mini"));
    EXPECT_FALSE(glob_match("*-mini", "gpt-4o-mini-2"));
    EXPECT_TRUE(glob_match("gpt-*-mini", "gpt-4o-mini"));
    EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
    EXPECT_TRUE(glob_match("a*b*c", "abc"));
    EXPECT_FALSE(glob_match("a*b*c", "acb"));
    EXPECT_TRUE(glob_match("**", "x"));
}

TEST(GlobMatch, StarBacktracksPastEarlyMatches) {
    EXPECT_TRUE(glob_match("*ab", "aab"));
    EXPECT_TRUE(glob_match("*aab", "aaab"));
    EXPECT_TRUE(glob_match("a*ab", "abab"));
    EXPECT_FALSE(glob_match("a*ab", "abba"));
}

TEST(GlobMatch, QuestionMarkMatchesExactlyOne) {
    EXPECT_TRUE(glob_match("gpt-?", "gpt-4"));
    EXPECT_FALSE(glob_match("gpt-?", "gpt-"));
    EXPECT_FALSE(glob_match("gpt-?", "gpt-4o"));
    EXPECT_TRUE(glob_match("??", "ab"));
    EXPECT_TRUE(glob_match("?*", "a"));
    EXPECT_FALSE(glob_match("?*", ""));
}

TEST(GlobMatch, WildcardsInTextAreLiterals) {
    EXPECT_TRUE(glob_match("a*", "a*"));
    EXPECT_FALSE(glob_match("a", "*"));
    EXPECT_FALSE(glob_match("a?", "*"));
}

TEST(GlobMatch, LongTextsStayFast) {
    const std::string text(10000, 'a');
    EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*b", text));
    EXPECT_TRUE(glob_match("*a*a*a*a*a*a*a*", text));
}

TEST(IsGlob, DetectsWildcards) {
    EXPECT_TRUE(is_glob("claude-*"));
    EXPECT_TRUE(is_glob("gpt-?"));
    EXPECT_FALSE(is_glob("smart"));
    EXPECT_FALSE(is_glob(""));
}

// A function, not aggregate initialisation: GCC's -Wmissing-field-initializers flags every
// brace-initialised TargetConfig that leaves out its later members.
config::TargetConfig target(std::string provider, std::string model, std::uint32_t weight) {
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
    r.primary = target("p", "m", 1);
    return r;
}

config::Config config_of(std::vector<config::RouteConfig> routes) {
    config::Config c;
    c.routes = std::move(routes);
    return c;
}

TEST(FindRoute, MatchesByRouteName) {
    const auto c = config_of({route("coding", "smart"), route("fast", "quick")});
    const auto* r = find_route(c, "fast");
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->name, "fast");
}

TEST(FindRoute, MatchesByExactMatchModel) {
    const auto c = config_of({route("coding", "smart"), route("fast", "quick")});
    const auto* r = find_route(c, "quick");
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->name, "fast");
}

TEST(FindRoute, MatchesByGlob) {
    const auto c = config_of({route("coding", "smart"), route("claude", "claude-*")});
    const auto* r = find_route(c, "claude-opus-4-6");
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->name, "claude");
}

TEST(FindRoute, FirstMatchInFileOrderWins) {
    const auto c = config_of({route("one", "gpt-*"), route("two", "gpt-4o"), route("gpt-4o")});
    EXPECT_EQ(find_route(c, "gpt-4o")->name, "one");
}

TEST(FindRoute, EarlierMatchModelBeatsLaterName) {
    const auto c = config_of({route("first", "*"), route("wanted", "x")});
    EXPECT_EQ(find_route(c, "wanted")->name, "first");
}

TEST(FindRoute, EmptyMatchModelIsCatchAll) {
    const auto c = config_of({route("coding", "smart"), route("default")});
    EXPECT_EQ(find_route(c, "gpt-4o")->name, "default");
    EXPECT_EQ(find_route(c, "smart")->name, "coding");
    EXPECT_EQ(find_route(c, "default")->name, "default");
}

TEST(FindRoute, CatchAllBeforeOthersTakesEverything) {
    const auto c = config_of({route("all"), route("coding", "smart")});
    EXPECT_EQ(find_route(c, "smart")->name, "all");
    EXPECT_EQ(find_route(c, "coding")->name, "all");
}

TEST(FindRoute, NoMatchIsNull) {
    const auto c = config_of({route("coding", "smart"), route("claude", "claude-*")});
    EXPECT_EQ(find_route(c, "gpt-4o"), nullptr);
    EXPECT_EQ(find_route(c, "Smart"), nullptr);
    EXPECT_EQ(find_route(c, ""), nullptr);
    EXPECT_EQ(find_route(config_of({}), "smart"), nullptr);
}

TEST(FindRoute, ReturnsPointerIntoConfig) {
    const auto c = config_of({route("a", "x"), route("b", "y")});
    EXPECT_EQ(find_route(c, "y"), &c.routes[1]);
}

TEST(ListedModelNames, RouteNamesAndExactMatchModelsInOrder) {
    const auto c = config_of({route("coding", "smart"), route("claude", "claude-*"),
                              route("q", "gpt-?"), route("default")});
    EXPECT_EQ(listed_model_names(c),
              (std::vector<std::string>{"coding", "smart", "claude", "q", "default"}));
}

TEST(ListedModelNames, Deduplicated) {
    const auto c = config_of({route("smart", "smart"), route("b", "smart"), route("c", "b")});
    EXPECT_EQ(listed_model_names(c), (std::vector<std::string>{"smart", "b", "c"}));
}

TEST(ListedModelNames, EmptyConfig) { EXPECT_TRUE(listed_model_names(config_of({})).empty()); }

TEST(ServingTarget, PrimaryWhenSet) {
    auto r = route("a");
    r.primary = target("opus", "claude", 1);
    r.candidate = target("spark", "fast", 1);
    EXPECT_EQ(serving_target(r).provider, "opus");
    EXPECT_EQ(&serving_target(r), &*r.primary);
}

TEST(ServingTarget, FirstWeightedTarget) {
    config::RouteConfig r;
    r.name = "split";
    r.targets = {target("opus", "m", 90), target("spark", "n", 10)};
    EXPECT_EQ(serving_target(r).model, "m");
    EXPECT_EQ(&serving_target(r), &r.targets[0]);
}

TEST(ServingTargetDeathTest, RouteWithoutTargetsAborts) {
    config::RouteConfig r;
    r.name = "broken";
    EXPECT_DEATH(serving_target(r), "route 'broken' has neither primary nor targets");
}

}  // namespace
}  // namespace turnout::routing
