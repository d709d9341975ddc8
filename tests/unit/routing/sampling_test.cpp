#include "routing/sampling.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace turnout::routing {
namespace {

TEST(Sampling, SameIdSameDecision) {
    for (int i = 0; i < 1000; ++i) {
        const std::string id = "req-" + std::to_string(i);
        EXPECT_EQ(sampled(id, 0.3), sampled(id, 0.3));
    }
}

TEST(Sampling, ZeroAndOneAreAbsolute) {
    for (int i = 0; i < 1000; ++i) {
        const std::string id = std::to_string(i);
        EXPECT_FALSE(sampled(id, 0.0));
        EXPECT_TRUE(sampled(id, 1.0));
    }
}

TEST(Sampling, RateHoldsOverManyIds) {
    for (const double rate : {0.01, 0.1, 0.5, 0.9}) {
        int hits = 0;
        constexpr int kDraws = 20000;
        for (int i = 0; i < kDraws; ++i) hits += sampled("id-" + std::to_string(i), rate) ? 1 : 0;
        // 5 standard deviations of a binomial: fails only on a real bias.
        const double sigma = std::sqrt(kDraws * rate * (1 - rate));
        EXPECT_NEAR(hits, kDraws * rate, 5 * sigma) << "rate " << rate;
    }
}

TEST(Sampling, SaltGivesIndependentDecisions) {
    int both = 0;
    constexpr int kDraws = 20000;
    for (int i = 0; i < kDraws; ++i) {
        const std::string id = "id-" + std::to_string(i);
        both += (sampled(id, 0.5, "a") && sampled(id, 0.5, "b")) ? 1 : 0;
    }
    EXPECT_NEAR(both, kDraws * 0.25, 5 * std::sqrt(kDraws * 0.25 * 0.75));
}

TEST(Sampling, HigherRateSamplesASuperset) {
    for (int i = 0; i < 2000; ++i) {
        const std::string id = "x" + std::to_string(i);
        if (sampled(id, 0.2)) {
            EXPECT_TRUE(sampled(id, 0.6));
        }
    }
}

TEST(Sampling, NanAndNegativeRatesSampleNothing) {
    EXPECT_FALSE(sampled("id", std::nan("")));
    EXPECT_FALSE(sampled("id", -1.0));
    EXPECT_TRUE(sampled("id", 2.0));
}

TEST(StableUnit, InTheUnitIntervalStableAndSalted) {
    int differs = 0;
    for (int i = 0; i < 1000; ++i) {
        const std::string id = "u" + std::to_string(i);
        const double u = stable_unit(id, "s");
        EXPECT_GE(u, 0.0);
        EXPECT_LT(u, 1.0);
        EXPECT_EQ(u, stable_unit(id, "s"));
        differs += u != stable_unit(id, "t") ? 1 : 0;
    }
    EXPECT_EQ(differs, 1000);
}

TEST(StableUnit, SampledIsAThresholdOnIt) {
    for (int i = 0; i < 1000; ++i) {
        const std::string id = "t" + std::to_string(i);
        EXPECT_EQ(sampled(id, 0.4, "salt"), stable_unit(id, "salt") < 0.4);
    }
}

}  // namespace
}  // namespace turnout::routing
