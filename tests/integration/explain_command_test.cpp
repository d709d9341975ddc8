// `turnout explain --config FILE --route NAME [--requests-per-hour N]`: the binary prints what
// shadow::explain computes with the controller's own class, and those numbers agree with an
// independent simulation of the controller and with the proven bounds.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <regex>
#include <string>

#include "config/loader.hpp"
#include "shadow/controller.hpp"
#include "shadow/explain.hpp"
#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

using namespace std::chrono_literals;

const std::string kExample = std::string(TURNOUT_SOURCE_DIR) + "/deploy/examples/turnout.yaml";
// The simulation is a few seconds at -O0; the sanitizer builds are several times slower.
constexpr std::chrono::milliseconds kExplainWait = 300s;

RunResult explain(std::vector<std::string> args) {
    ProcessOptions p;
    p.argv = {TURNOUT_BIN, "explain"};
    p.argv.insert(p.argv.end(), args.begin(), args.end());
    return run_command(p, kExplainWait);
}

config::RouteConfig example_route(const std::string& name) {
    const auto loaded = config::load_config_file(kExample, config::EnvPolicy::warn);
    EXPECT_TRUE(loaded.errors.empty());
    for (const auto& route : loaded.config->routes) {
        if (route.name == name) return route;
    }
    ADD_FAILURE() << "no route " << name;
    return {};
}

/// The table cell for `pass_rate`, column `column` (0-2 flip, 3-5 rollback), as printed.
std::string cell(const std::string& output, double pass_rate, int column) {
    char rate[16];
    std::snprintf(rate, sizeof rate, "%.2f |", pass_rate);
    const auto at = output.find(rate);
    if (at == std::string::npos) return "";
    const std::string line = output.substr(at + 6, output.find('\n', at) - at - 6);
    static const std::regex kCell(R"((<= |>= )?[0-9.]+%|never)");
    int i = 0;
    for (auto it = std::sregex_iterator(line.begin(), line.end(), kCell);
         it != std::sregex_iterator(); ++it, ++i) {
        if (i == column) return it->str();
    }
    return "";
}

double percent_of(const std::string& text) {
    const auto digits = text.find_first_of("0123456789");
    return digits == std::string::npos ? -1.0 : std::stod(text.substr(digits)) / 100.0;
}

/// An independent simulation: `runs` fresh routes fed a verdict every `spacing` at
/// `pass_rate`; the share that flipped within `verdicts` and their mean verdicts to flip.
std::pair<double, double> simulate_flips(const config::RouteConfig& route, double pass_rate,
                                         int runs, int verdicts, std::chrono::seconds spacing,
                                         std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution pass(pass_rate);
    int flipped = 0;
    double sum = 0.0;
    const shadow::TimePoint t0 = shadow::TimePoint{} + 1'800'000'000s;
    for (int run = 0; run < runs; ++run) {
        shadow::Controller c(route, "independent", t0);
        shadow::TimePoint now = t0;
        for (int i = 1; i <= verdicts; ++i) {
            now += spacing;
            c.record_verdict(now,
                             pass(rng) ? shadow::VerdictKind::pass : shadow::VerdictKind::fail);
            if (c.state() != shadow::RouteState::shadowing) {
                ++flipped;
                sum += i;
                break;
            }
        }
    }
    return {static_cast<double>(flipped) / runs, flipped == 0 ? 0.0 : sum / flipped};
}

/// `turnout explain` on the example's `coding` route (seconds at -O0, more under the
/// sanitizers), run once per test process.
const RunResult& printed() {
    static const RunResult result = explain({"--config", kExample, "--route", "coding"});
    return result;
}

/// The same computation in-process.
const shadow::Explanation& computed() {
    static const shadow::Explanation explanation = shadow::explain(example_route("coding"));
    return explanation;
}

TEST(ExplainExample, PrintsWhatTheControllerComputes) {
    const std::string& output = printed().output;
    ASSERT_EQ(printed().exit_code, 0) << output;
    EXPECT_EQ(output, shadow::render(computed()));
    EXPECT_NE(output.find("false switch at most 5% at any horizon"), std::string::npos) << output;
    EXPECT_NE(output.find("600 live requests an hour"), std::string::npos);
    EXPECT_NE(output.find("60 verdicts an hour"), std::string::npos);
    EXPECT_NE(output.find("62 straight passes accept it from zero, 8 straight fails"),
              std::string::npos)
        << output;
    EXPECT_NE(output.find("9 straight fails roll back after a flip, 53 straight passes"),
              std::string::npos)
        << output;
    for (const double rate : {0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.97, 0.99}) {
        for (int column = 0; column < 6; ++column) {
            EXPECT_FALSE(cell(output, rate, column).empty()) << rate << " column " << column << "\n"
                                                             << output;
        }
    }
    // The bounds: a candidate at rollback_threshold flips, one at threshold rolls back, at
    // most 1 - confidence over a month (past the simulated verdicts: the proven bound).
    const std::string flip_month = cell(output, 0.85, 2);
    EXPECT_EQ(flip_month.rfind("<= ", 0), 0u) << flip_month;
    EXPECT_LE(percent_of(flip_month), 0.05) << output;
    EXPECT_LE(percent_of(cell(output, 0.85, 0)), percent_of(flip_month));
    const std::string rollback_month = cell(output, 0.90, 5);
    EXPECT_EQ(rollback_month.rfind("<= ", 0), 0u) << rollback_month;
    EXPECT_LE(percent_of(rollback_month), 0.05) << output;
    // A good candidate flips within a day; a bad one is rolled back within a day.
    EXPECT_EQ(cell(output, 0.95, 0), "100%") << output;
    EXPECT_EQ(cell(output, 0.80, 3), "100%") << output;
}

// Against an independent simulation (another seed, more runs) of the same controller: the
// chance of a false switch within a day, and the mean verdicts to a flip at 0.95 and 0.97.
TEST(ExplainExample, AgreesWithAnIndependentSimulation) {
    const auto route = example_route("coding");
    const auto& e = computed();
    ASSERT_EQ(e.flip_verdicts_per_hour, 60.0);  // one verdict a minute
    const double day85 = simulate_flips(route, 0.85, 1000, 1440, 60s, 7).first;
    double explained85 = -1;
    for (const auto& row : e.rows) {
        if (std::abs(row.pass_rate - 0.85) < 1e-9) explained85 = row.flip[0].value;
    }
    // 200 runs against 1,000: a standard error of about 1.5 points at 5%; allow 3 of them.
    EXPECT_NEAR(explained85, day85, 0.045);
    ASSERT_EQ(e.speeds.size(), 2u);
    for (const auto& speed : e.speeds) {
        const auto [share, mean] = simulate_flips(route, speed.pass_rate, 1000, 1440, 60s, 11);
        EXPECT_EQ(share, 1.0);
        EXPECT_EQ(speed.flipped, 1.0);
        // Standard deviations are about 30 verdicts: 3 standard errors of the difference.
        EXPECT_NEAR(speed.mean_verdicts, mean, 8.0) << speed.pass_rate;
        EXPECT_NEAR(speed.mean_hours, speed.mean_verdicts / 60.0, 1e-9);
    }
    EXPECT_LT(e.speeds[1].mean_verdicts, e.speeds[0].mean_verdicts);  // 0.97 sooner than 0.95
    EXPECT_GE(e.speeds[0].mean_verdicts, 95.0);  // the seed's scale: about 100 at 0.95
    EXPECT_LE(e.speeds[0].mean_verdicts, 125.0);
}

TEST(ExplainCommand, RequestsPerHourSetsTheVerdictRate) {
    const auto result = explain(
        {"--config", kExample, "--route", "coding", "--requests-per-hour", "60", "--runs", "20"});
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("60 live requests an hour"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("6 verdicts an hour"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("3 once promoted"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("20 seeded runs"), std::string::npos) << result.output;
}

TEST(ExplainCommand, BadCommandLinesExitTwo) {
    auto result = explain({"--config", kExample});
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_NE(result.output.find("--route NAME is required"), std::string::npos) << result.output;
    result = explain({"--config", kExample, "--route", "nope"});
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_NE(result.output.find("no route 'nope' (routes: coding, default)"), std::string::npos)
        << result.output;
    result = explain({"--config", kExample, "--route", "coding", "--requests-per-hour", "lots"});
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_NE(result.output.find("--requests-per-hour needs a number"), std::string::npos)
        << result.output;
    result = explain({"--config", "/nonexistent/turnout.yaml", "--route", "coding"});
    EXPECT_EQ(result.exit_code, 2) << result.output;
}

TEST(ExplainCommand, HelpNamesTheCommand) {
    auto result = explain({"--help"});
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_NE(result.output.find("usage: turnout explain --config FILE --route NAME"),
              std::string::npos)
        << result.output;
    ProcessOptions p;
    p.argv = {TURNOUT_BIN, "--help"};
    result = run_command(p, kWait);
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_NE(result.output.find("turnout explain --config FILE --route NAME"), std::string::npos)
        << result.output;
}

}  // namespace
}  // namespace turnout::test
