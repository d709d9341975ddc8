// shadow::explain and render on small simulations: which horizons are simulated and which get
// the proven bound, and what the text says about modes, silent rates and the stall rule.
#include "shadow/explain.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "shadow/controller.hpp"

namespace turnout::shadow {
namespace {

using namespace std::chrono_literals;

config::RouteConfig make_route() {
    config::RouteConfig route;
    route.name = "coding";
    route.shadow.sample_rate = 0.1;
    route.promotion.mode = config::PromotionMode::automatic;
    route.promotion.hold = 0s;
    return route;
}

ExplainOptions small() {
    ExplainOptions options;
    options.runs = 40;
    options.verdict_cap = 2'000;  // a day (1,440 verdicts) simulated; a week and a month not
    return options;
}

const ExplainRow& row_at(const Explanation& e, double rate) {
    for (const auto& row : e.rows) {
        if (std::abs(row.pass_rate - rate) < 1e-9) return row;
    }
    ADD_FAILURE() << "no row " << rate;
    return e.rows.front();
}

TEST(Explain, HorizonsPastTheCapGetTheBoundOnlyOnTheBoundedSide) {
    const Explanation e = explain(make_route(), small());
    EXPECT_EQ(e.flip_verdicts_per_hour, 60.0);
    EXPECT_EQ(e.rollback_verdicts_per_hour, 30.0);  // shadow_after_promotion 0.05
    EXPECT_EQ(e.flip_simulated, 2'000u);
    ASSERT_EQ(e.rows.size(), 8u);  // the thresholds 0.85 and 0.90 are listed already
    const auto& at85 = row_at(e, 0.85);
    EXPECT_EQ(at85.flip[0].kind, Chance::Kind::simulated);
    EXPECT_EQ(at85.flip[1].kind, Chance::Kind::at_most);
    EXPECT_LE(at85.flip[2].value, 0.05 + 2.0 / 40);  // the bound, plus the runs' noise
    EXPECT_GE(at85.flip[2].value, at85.flip[0].value);
    const auto& at88 = row_at(e, 0.88);  // between the thresholds: no bound holds
    EXPECT_EQ(at88.flip[2].kind, Chance::Kind::at_least);
    EXPECT_EQ(at88.rollback[2].kind, Chance::Kind::at_least);
    const auto& at95 = row_at(e, 0.95);
    EXPECT_EQ(at95.flip[0], (Chance{Chance::Kind::simulated, 1.0}));
    EXPECT_EQ(at95.rollback[0].kind, Chance::Kind::simulated);  // 720 of 2,000
    EXPECT_EQ(at95.rollback[2].kind, Chance::Kind::at_most);
    EXPECT_LE(at95.rollback[2].value, 0.05);
    ASSERT_EQ(e.speeds.size(), 2u);
    EXPECT_EQ(e.speeds[0].pass_rate, 0.95);
    EXPECT_EQ(e.speeds[0].flipped, 1.0);
    EXPECT_NEAR(e.speeds[0].mean_hours, e.speeds[0].mean_verdicts / 60.0, 1e-12);
    EXPECT_EQ(e.flip_accept_passes, 62u);
    EXPECT_EQ(e.flip_reject_fails, 8u);
    EXPECT_EQ(e.rollback_fails, 9u);
    EXPECT_EQ(e.rollback_reject_passes, 53u);
}

TEST(Explain, SameSeedSameNumbers) {
    EXPECT_EQ(render(explain(make_route(), small())), render(explain(make_route(), small())));
}

TEST(Explain, RouteThresholdsJoinTheTable) {
    auto route = make_route();
    route.promotion.threshold = 0.93;
    route.promotion.rollback_threshold = 0.86;
    auto options = small();
    options.runs = 5;
    const Explanation e = explain(route, options);
    EXPECT_EQ(e.rows.size(), 10u);
    EXPECT_NO_FATAL_FAILURE(row_at(e, 0.93));
    EXPECT_NO_FATAL_FAILURE(row_at(e, 0.86));
}

TEST(Explain, NoVerdictsMeansNever) {
    auto route = make_route();
    route.shadow.sample_rate = 0.0;
    route.promotion.shadow_after_promotion = 0.0;
    auto options = small();
    options.runs = 5;
    const Explanation e = explain(route, options);
    for (const auto& row : e.rows) {
        for (const auto& c : row.flip) EXPECT_EQ(c.kind, Chance::Kind::never);
        for (const auto& c : row.rollback) EXPECT_EQ(c.kind, Chance::Kind::never);
    }
    EXPECT_NE(render(e).find("no flip within 0 verdicts"), std::string::npos) << render(e);
}

TEST(Explain, TextNamesTheModeAndTheStallRule) {
    auto route = make_route();
    route.promotion.mode = config::PromotionMode::shadow;
    route.promotion.step = 0s;
    auto options = small();
    options.runs = 5;
    const std::string text = render(explain(route, options));
    EXPECT_NE(text.find("(mode shadow never flips or rolls back by itself: the numbers are those "
                        "of mode auto)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("verdicts stopping: never here (hold and step are both 0s)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find(guarantee(route.promotion)), std::string::npos);

    route.promotion.step = 30min;
    const std::string with_step = render(explain(route, options));
    EXPECT_NE(with_step.find("none for 30m, the step: hold is 0s"), std::string::npos) << with_step;
}

TEST(Explain, ChanceText) {
    EXPECT_EQ(to_string(Chance{Chance::Kind::simulated, 0.0}), "0%");
    EXPECT_EQ(to_string(Chance{Chance::Kind::simulated, 0.0416}), "4.2%");
    // Bounds round outwards, so that the text still bounds.
    EXPECT_EQ(to_string(Chance{Chance::Kind::at_most, 0.00031}), "<= 0.04%");
    EXPECT_EQ(to_string(Chance{Chance::Kind::at_most, 0.0411}), "<= 4.2%");
    EXPECT_EQ(to_string(Chance{Chance::Kind::at_most, 0.05}), "<= 5.0%");
    EXPECT_EQ(to_string(Chance{Chance::Kind::at_least, 0.9959}), ">= 99.5%");
    EXPECT_EQ(to_string(Chance{Chance::Kind::at_least, 0.99}), ">= 99.0%");
    EXPECT_EQ(to_string(Chance{Chance::Kind::at_least, 1.0}), "100%");
    EXPECT_EQ(to_string(Chance{Chance::Kind::never, 0.0}), "never");
}

}  // namespace
}  // namespace turnout::shadow
