// A provider's circuit breaker on a scripted clock: opens after N consecutive failures, rejects
// during the cooldown, lets one probe through after it, and closes or reopens on the probe.

#include "upstream/circuit_breaker.hpp"

#include <gtest/gtest.h>

namespace turnout::upstream {
namespace {

using namespace std::chrono_literals;
using Admission = CircuitBreaker::Admission;
using State = CircuitBreaker::State;

config::CircuitBreakerConfig config(std::uint32_t failures, config::Duration cooldown) {
    config::CircuitBreakerConfig c;
    c.failures = failures;
    c.cooldown = cooldown;
    return c;
}

class CircuitBreakerTest : public ::testing::Test {
  protected:
    CircuitBreaker::Clock::time_point now_{std::chrono::hours(1)};
    CircuitBreaker breaker_{config(3, 10s)};
};

TEST_F(CircuitBreakerTest, OpensAfterConsecutiveFailuresOnly) {
    EXPECT_FALSE(breaker_.record_failure(now_));
    EXPECT_FALSE(breaker_.record_failure(now_));
    breaker_.record_success();  // breaks the run
    EXPECT_FALSE(breaker_.record_failure(now_));
    EXPECT_FALSE(breaker_.record_failure(now_));
    EXPECT_EQ(breaker_.admit(now_), Admission::allowed);
    EXPECT_TRUE(breaker_.record_failure(now_));  // the third in a row opens it
    EXPECT_EQ(breaker_.state(now_), State::open);
    EXPECT_EQ(breaker_.admit(now_), Admission::rejected);
    EXPECT_EQ(breaker_.retry_after(now_), 10s);
    EXPECT_EQ(breaker_.retry_after(now_ + 4s), 6s);
}

TEST_F(CircuitBreakerTest, OneProbeAfterTheCooldownAndItsSuccessCloses) {
    for (int i = 0; i < 3; ++i) breaker_.record_failure(now_);
    EXPECT_EQ(breaker_.admit(now_ + 9999ms), Admission::rejected);
    EXPECT_EQ(breaker_.admit(now_ + 10s), Admission::probe);
    EXPECT_EQ(breaker_.admit(now_ + 10s), Admission::rejected) << "only one probe at a time";
    breaker_.record_success();
    EXPECT_EQ(breaker_.state(now_ + 10s), State::closed);
    EXPECT_EQ(breaker_.admit(now_ + 10s), Admission::allowed);
    // A fresh run of failures is needed to open it again.
    EXPECT_FALSE(breaker_.record_failure(now_ + 11s));
    EXPECT_EQ(breaker_.admit(now_ + 11s), Admission::allowed);
}

TEST_F(CircuitBreakerTest, AFailedProbeReopensForAnotherCooldown) {
    for (int i = 0; i < 3; ++i) breaker_.record_failure(now_);
    ASSERT_EQ(breaker_.admit(now_ + 10s), Admission::probe);
    breaker_.record_failure(now_ + 12s);
    EXPECT_EQ(breaker_.state(now_ + 12s), State::open);
    EXPECT_EQ(breaker_.admit(now_ + 21s), Admission::rejected);
    EXPECT_EQ(breaker_.retry_after(now_ + 12s), 10s);
    EXPECT_EQ(breaker_.admit(now_ + 22s), Admission::probe);
}

TEST_F(CircuitBreakerTest, AnAbandonedProbeLetsTheNextRequestProbe) {
    for (int i = 0; i < 3; ++i) breaker_.record_failure(now_);
    ASSERT_EQ(breaker_.admit(now_ + 10s), Admission::probe);
    breaker_.abandon_probe();
    EXPECT_EQ(breaker_.admit(now_ + 10s), Admission::probe);
}

TEST_F(CircuitBreakerTest, StragglersWhileOpenDoNotExtendTheCooldown) {
    for (int i = 0; i < 3; ++i) breaker_.record_failure(now_);
    EXPECT_FALSE(breaker_.record_failure(now_ + 5s));  // admitted before it opened
    EXPECT_EQ(breaker_.admit(now_ + 10s), Admission::probe);
}

TEST(CircuitBreakerOff, ZeroFailuresNeverOpens) {
    CircuitBreaker breaker(config(0, 10s));
    const CircuitBreaker::Clock::time_point now{};
    for (int i = 0; i < 100; ++i) EXPECT_FALSE(breaker.record_failure(now));
    EXPECT_EQ(breaker.admit(now), Admission::allowed);
    EXPECT_EQ(breaker.retry_after(now), CircuitBreaker::Clock::duration::zero());
}

TEST(CircuitBreakerOff, ReconfiguringToZeroClosesAnOpenCircuit) {
    CircuitBreaker breaker(config(1, 10s));
    const CircuitBreaker::Clock::time_point now{};
    EXPECT_TRUE(breaker.record_failure(now));
    EXPECT_EQ(breaker.admit(now), Admission::rejected);
    breaker.reconfigure(config(0, 10s));
    EXPECT_EQ(breaker.admit(now), Admission::allowed);
}

}  // namespace
}  // namespace turnout::upstream
