// `turnout check --config FILE`: exit 0 for a valid file; exit 2 with one `FILE:LINE:COL:
// message` per problem, FILE as given on the command line.

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

constexpr const char* kValid = R"(listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
providers:
  sim:
    kind: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: TURNOUT_TEST_CHECK_KEY
    timeout: 30s
routes:
  - name: smart
    match:
      model: gpt-smart
    primary:
      provider: sim
      model: sim-large
)";

class CheckCommandTest : public ::testing::Test {
  protected:
    /// Runs `turnout check --config NAME` in the temp dir (so FILE is the relative NAME).
    RunResult check(const std::string& name, const std::string& yaml, bool with_key = true) {
        dir_.write_file(name, yaml);
        ProcessOptions p;
        p.argv = {TURNOUT_BIN, "check", "--config", name};
        p.cwd = dir_.path();
        if (with_key) {
            p.env["TURNOUT_TEST_CHECK_KEY"] = "sk-check";
        } else {
            p.unset_env.push_back("TURNOUT_TEST_CHECK_KEY");
        }
        return run_command(p, kWait);
    }

    static std::string replace(std::string text, const std::string& from, const std::string& to) {
        auto at = text.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        if (at != std::string::npos) text.replace(at, from.size(), to);
        return text;
    }

    TempDir dir_;
};

TEST_F(CheckCommandTest, ValidFileExitsZero) {
    auto result = check("good.yaml", kValid);
    EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST_F(CheckCommandTest, BuilderConfigIsValid) {
    // The config the other integration tests run with passes `check` too.
    auto yaml = GatewayConfig::for_simulator("http://127.0.0.1:9/v1")
                    .limit("client_timeout", "500ms")
                    .limit("max_body_bytes", "1KiB")
                    .provider_option("sim", "first_byte_timeout", "300ms")
                    .yaml();
    dir_.write_file("builder.yaml", yaml);
    ProcessOptions p;
    p.argv = {TURNOUT_BIN, "check", "--config", "builder.yaml"};
    p.cwd = dir_.path();
    p.env[GatewayConfig::kSimKeyEnv] = "x";
    auto result = run_command(p, kWait);
    EXPECT_EQ(result.exit_code, 0) << yaml << result.output;
}

TEST_F(CheckCommandTest, UnsetKeyVariableIsOnlyAWarning) {
    auto result = check("good.yaml", kValid, /*with_key=*/false);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("TURNOUT_TEST_CHECK_KEY"), std::string::npos) << result.output;
}

TEST_F(CheckCommandTest, UnknownKeyIsReportedWithItsPosition) {
    // Line 10, column 5: `colour` inside providers.sim.
    auto yaml = replace(kValid, "    timeout: 30s\n", "    timeout: 30s\n    colour: blue\n");
    auto result = check("bad.yaml", yaml);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_TRUE(std::regex_search(result.output, std::regex(R"((^|\n)bad\.yaml:10:5: .*colour)")))
        << result.output;
}

TEST_F(CheckCommandTest, UnknownProviderPointsAtTheValue) {
    // `      provider: nope` is line 15; the value starts at column 17.
    auto yaml = replace(kValid, "      provider: sim\n", "      provider: nope\n");
    auto result = check("bad.yaml", yaml);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_TRUE(std::regex_search(result.output, std::regex(R"((^|\n)bad\.yaml:15:17: .*nope)")))
        << result.output;
}

TEST_F(CheckCommandTest, AllProblemsAreReportedAtOnce) {
    auto yaml = replace(kValid, "    timeout: 30s\n", "    timeout: 30s\n    colour: blue\n");
    yaml = replace(yaml, "      provider: sim\n", "      provider: nope\n");
    auto result = check("bad.yaml", yaml);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_TRUE(std::regex_search(result.output, std::regex(R"(bad\.yaml:10:5: )")))
        << result.output;
    EXPECT_TRUE(std::regex_search(result.output, std::regex(R"(bad\.yaml:16:17: )")))
        << result.output;
}

TEST_F(CheckCommandTest, BadDurationIsAnError) {
    auto yaml = replace(kValid, "    timeout: 30s\n", "    timeout: 30 seconds\n");
    auto result = check("bad.yaml", yaml);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_TRUE(std::regex_search(result.output, std::regex(R"(bad\.yaml:9:\d+: )")))
        << result.output;
}

TEST_F(CheckCommandTest, MissingFileExitsTwo) {
    ProcessOptions p;
    p.argv = {TURNOUT_BIN, "check", "--config", "does-not-exist.yaml"};
    p.cwd = dir_.path();
    auto result = run_command(p, kWait);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_NE(result.output.find("does-not-exist.yaml"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace turnout::test
