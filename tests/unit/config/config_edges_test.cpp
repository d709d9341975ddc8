// Edges the loader's split into one file per job (issue 11) must keep: the exact overflow
// limits of the unit parsers, every listen-address message, the order of two problems reported
// at the same position, and the JSON types of plain YAML scalars in `body:`.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "config/loader.hpp"

namespace turnout::config {
namespace {

constexpr std::string_view kRest = R"(providers:
  p: {base_url: http://h}
routes:
  - {name: r, primary: {provider: p, model: m}}
)";

std::vector<std::string> errors_of(const std::string& yaml) {
    std::vector<std::string> texts;
    for (const auto& e : load_config_string(yaml, "e.yaml", EnvPolicy::warn).errors) {
        texts.push_back(e.text);
    }
    return texts;
}

TEST(ParseDurationEdges, LargestValueOfEachUnit) {
    Duration d{};
    EXPECT_TRUE(parse_duration("9223372036854775807ms", d));
    EXPECT_EQ(d.count(), 9223372036854775807);
    EXPECT_FALSE(parse_duration("9223372036854775808ms", d));
    EXPECT_TRUE(parse_duration("9223372036854775s", d));
    EXPECT_FALSE(parse_duration("9223372036854776s", d));
    EXPECT_TRUE(parse_duration("153722867280912m", d));
    EXPECT_FALSE(parse_duration("153722867280913m", d));
    EXPECT_TRUE(parse_duration("2562047788015h", d));
    EXPECT_EQ(d, std::chrono::hours(2562047788015));
    EXPECT_FALSE(parse_duration("2562047788016h", d));
    EXPECT_EQ(d, std::chrono::hours(2562047788015)) << "untouched on failure";
}

TEST(ParseSizeEdges, LargestValueOfEachUnit) {
    std::uint64_t n = 0;
    EXPECT_TRUE(parse_size("18446744073709551615B", n));
    EXPECT_EQ(n, 18446744073709551615ull);
    EXPECT_TRUE(parse_size("18014398509481983KiB", n));
    EXPECT_EQ(n, 18014398509481983ull << 10);
    EXPECT_FALSE(parse_size("18014398509481984KiB", n));
    EXPECT_TRUE(parse_size("17592186044415MiB", n));
    EXPECT_FALSE(parse_size("17592186044416MiB", n));
    EXPECT_EQ(n, 17592186044415ull << 20) << "untouched on failure";
}

TEST(ListenEdges, AcceptedAddresses) {
    for (const char* address : {"0.0.0.0:8080", "[::1]:8080", "h:0", "h:65535", "h:08080"}) {
        EXPECT_EQ(errors_of("listen: '" + std::string(address) + "'\n" + std::string(kRest)),
                  std::vector<std::string>{})
            << address;
    }
}

TEST(ListenEdges, EveryMessage) {
    const std::string expected =
        "e.yaml:1:9: listen: expected HOST:PORT (e.g. 0.0.0.0:8080 or "
        "[::1]:8080), got ";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"[::1]", expected + "'[::1]'"},
        {"[::1]:", expected + "'[::1]:'"},
        {"[::1", expected + "'[::1'"},
        {"[::1]x:80", expected + "'[::1]x:80'"},
        {"[]:80", expected + "'[]:80'"},
        {"h", expected + "'h'"},
        {"h:", expected + "'h:'"},
        {":80", expected + "':80'"},
        {"h :80", expected + "'h :80'"},
        {"h:+1", expected + "'h:+1'"},
        {"h:123456", expected + "'h:123456'"},
        {"", expected + "''"},
        {"::1:80",
         "e.yaml:1:9: listen: an IPv6 address needs brackets, e.g. [::1]:8080; got '::1:80'"},
        {"h:65536", "e.yaml:1:9: listen: port must be between 0 and 65535, got '65536'"},
    };
    for (const auto& [address, message] : cases) {
        EXPECT_EQ(errors_of("listen: '" + address + "'\n" + std::string(kRest)),
                  std::vector<std::string>{message})
            << address;
    }
}

TEST(ListenEdges, AdminListenHasTheSameChecks) {
    EXPECT_EQ(errors_of("admin:\n  listen: '::1:9090'\n" + std::string(kRest)),
              std::vector<std::string>{"e.yaml:2:11: admin.listen: an IPv6 address needs "
                                       "brackets, e.g. [::1]:8080; got '::1:9090'"});
}

TEST(OrderEdges, ProblemsAtOnePositionKeepTheOrderTheyWereFound) {
    // A block map starts at its first key: the unknown key and the missing one are both
    // reported at 2:5, the key check first.
    EXPECT_EQ(errors_of(R"(routes:
  - foo: 1
    primary: {provider: p, model: m}
providers:
  p: {base_url: http://h}
)"),
              (std::vector<std::string>{"e.yaml:2:5: routes[0]: unknown key 'foo'",
                                        "e.yaml:2:5: routes[0]: missing required key 'name'"}));
}

TEST(OrderEdges, ProviderNamesMustBeNonEmptyScalars) {
    EXPECT_EQ(errors_of(R"(providers:
  '': {base_url: http://h}
  [a]: {base_url: http://h}
  p: {base_url: http://h}
routes:
  - {name: r, primary: {provider: p, model: m}}
)"),
              (std::vector<std::string>{"e.yaml:2:3: providers: expected a provider name, got ''",
                                        "e.yaml:3:3: providers: expected a provider name, got a "
                                        "list"}));
}

TEST(BodyEdges, PlainScalarsTypedLikeYamlCore) {
    const auto result = load_config_string(R"(providers:
  p: {base_url: http://h}
routes:
  - name: r
    primary:
      provider: p
      model: m
      body: {a: [x, {b: ~}, !!str 5, '7', 08, 1_000, .inf, 0x1F, -0, +5, 1e400, -1.5e3, True]}
)",
                                           "e.yaml", EnvPolicy::warn);
    ASSERT_NE(result.config, nullptr);
    EXPECT_EQ(result.config->routes.at(0).primary->extra_body_json,
              R"({"a":["x",{"b":null},"5","7",8,"1_000",".inf","0x1F",0,5,"1e400",-1500.0,true]})");
}

}  // namespace
}  // namespace turnout::config
