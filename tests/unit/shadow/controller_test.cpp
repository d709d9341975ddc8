// The promotion controller on scripted verdicts and a fake clock, in the manner of Flagger's and
// Argo Rollouts' analysis tests: every input carries its own time, nothing sleeps.
#include "shadow/controller.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numbers>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace turnout::shadow {

// Readable gtest output for the enums (ADL looks in the types' own namespace).
inline void PrintTo(RouteState v, std::ostream* os) { *os << to_string(v); }
inline void PrintTo(Side v, std::ostream* os) { *os << to_string(v); }
inline void PrintTo(EventKind v, std::ostream* os) { *os << to_string(v); }
inline void PrintTo(Trigger v, std::ostream* os) { *os << to_string(v); }
inline void PrintTo(SprtDecision v, std::ostream* os) { *os << to_string(v); }
inline void PrintTo(ManualOutcome v, std::ostream* os) { *os << static_cast<int>(v); }

namespace {

using namespace std::chrono_literals;
using config::PromotionMode;

const TimePoint kT0 = TimePoint{} + 1'700'000'000s;
const double kPassStep = std::log(0.90 / 0.85);
const double kFailStep = std::log(0.10 / 0.15);
// The k-th test accepts at ln(pi^2 k^2 / (6 alpha)) and rejects at ln(alpha) (alpha = 0.05).
double accept_at(std::uint64_t k) {
    const double kk = static_cast<double>(k);
    return std::log(std::numbers::pi * std::numbers::pi * kk * kk / (6 * 0.05));
}
const double kAccept = accept_at(1);
const double kReject = std::log(0.05);

/// The contract's example route with mode auto and hold 0s unless a test says otherwise.
config::RouteConfig make_route() {
    config::RouteConfig route;
    route.name = "coding";
    route.shadow.sample_rate = 0.1;
    auto& p = route.promotion;
    p.mode = config::PromotionMode::automatic;
    p.window = 100;
    p.min_samples = 50;
    p.threshold = 0.90;
    p.hold = 0s;
    p.rollback_threshold = 0.85;
    p.confidence = 0.95;
    p.ramp = {100};
    p.step = 30min;
    p.cooldown = 1h;
    p.shadow_after_promotion = 0.05;
    return route;
}

config::RouteConfig with_mode(config::RouteConfig route, config::PromotionMode mode) {
    route.promotion.mode = mode;
    return route;
}

/// A controller and its fake clock. Each input first moves the clock by its spacing.
class Script {
  public:
    explicit Script(config::RouteConfig route = make_route(), std::string fingerprint = "fp-1")
        : route_(std::move(route)), controller_(route_, std::move(fingerprint), kT0) {}

    Controller& c() { return controller_; }
    Status status() const { return controller_.status(); }
    RouteState state() const { return controller_.state(); }
    TimePoint now() const { return now_; }
    config::RouteConfig& route() { return route_; }

    void verdicts(int n, VerdictKind kind, std::chrono::seconds spacing = 1s) {
        for (int i = 0; i < n; ++i) {
            now_ += spacing;
            controller_.record_verdict(now_, kind);
        }
    }
    void passes(int n) { verdicts(n, VerdictKind::pass); }
    void fails(int n) { verdicts(n, VerdictKind::fail); }
    void errors(int n) { verdicts(n, VerdictKind::error); }

    /// `n` live requests served by the candidate, one a second.
    void live(int n, bool error = false) {
        for (int i = 0; i < n; ++i) {
            now_ += 1s;
            controller_.record_live_result(now_, true, error);
        }
    }
    /// Live requests (no errors) every `spacing` up to and including `end`.
    void live_until(TimePoint end, std::chrono::seconds spacing = 1s) {
        while (now_ + spacing <= end) {
            now_ += spacing;
            controller_.record_live_result(now_, controller_.candidate_share() > 0, false);
        }
    }
    /// Time passing alone: a tick every `spacing` up to and including `end`.
    void tick_until(TimePoint end, std::chrono::seconds spacing = 1s) {
        while (now_ < end) {
            now_ = std::min(now_ + spacing, end);
            controller_.tick(now_);
        }
    }
    std::vector<TransitionEvent> take() { return controller_.take_events(); }

    /// Flips a fresh route with hold 0s: 62 straight passes.
    void flip() {
        passes(62);
        ASSERT_EQ(state(), RouteState::promoted);
        take();
    }

  private:
    config::RouteConfig route_;
    Controller controller_;
    TimePoint now_ = kT0;
};

// ---------------------------------------------------------------------------------------------
// The flip test

// Ville's bounds, not Wald's ln(19): the first test accepts at ln(pi^2 / (6 x 0.05)) = ln 32.9,
// every test rejects at ln 0.05 = -ln 20.
TEST(ControllerFlip, SprtBoundsFollowConfidence) {
    const Status s = Script().status();
    EXPECT_NEAR(s.sprt_accept, std::log(32.898681336964528), 1e-9);
    EXPECT_NEAR(s.sprt_reject, -std::log(20.0), 1e-9);
    EXPECT_EQ(s.flip_test, 1u);
    EXPECT_EQ(s.rollback_test, 0u);
    EXPECT_NEAR(s.rollback_accept, s.sprt_accept, 1e-12);
    EXPECT_EQ(s.sprt_decision, SprtDecision::undecided);
}

TEST(ControllerFlip, TestBudgetsSumToAlpha) {
    double spent = 0.0;
    for (std::uint64_t k = 1; k <= 1000; ++k) {
        spent += test_budget(0.05, k);
        EXPECT_NEAR(accept_bound(0.05, k), accept_at(k), 1e-9) << k;
        if (k == 1 || k == 2 || k == 10 || k == 1000) {
            // What is left for the later tests: an upper bound, and a tight one.
            EXPECT_GE(budget_after(0.05, k), 0.05 - spent - 1e-15) << k;
            EXPECT_NEAR(budget_after(0.05, k), 0.05 - spent, 1e-7 * (0.05 - spent)) << k;
        }
    }
    EXPECT_NEAR(test_budget(0.05, 1), 0.3 / (std::numbers::pi * std::numbers::pi), 1e-15);
    EXPECT_NEAR(budget_after(0.05, 0), 0.05, 1e-7 * 0.05);
    EXPECT_LT(spent, 0.05);
}

TEST(ControllerFlip, GuaranteeLine) {
    EXPECT_EQ(guarantee(make_route().promotion),
              "false switch at most 5% at any horizon (pass rate <= 0.85), false rollback at "
              "most 5% (>= 0.9)");
}

TEST(ControllerFlip, SprtAcceptsAtExactly62StraightPasses) {
    EXPECT_EQ(std::ceil(kAccept / kPassStep), 62.0);
    Script s;
    s.passes(61);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    EXPECT_EQ(s.status().sprt_decision, SprtDecision::undecided);
    EXPECT_NEAR(s.status().evidence.sprt_llr, 61 * kPassStep, 1e-9);
    EXPECT_LT(s.status().evidence.sprt_llr, kAccept);
    EXPECT_TRUE(s.take().empty());

    s.passes(1);
    EXPECT_EQ(s.state(), RouteState::promoted);  // ramp [100]: straight to promoted
    EXPECT_EQ(s.c().candidate_share(), 1.0);
    const auto events = s.take();
    ASSERT_EQ(events.size(), 1u);
    const TransitionEvent& e = events[0];
    EXPECT_EQ(e.time, s.now());
    EXPECT_EQ(e.kind, EventKind::transition);
    EXPECT_EQ(e.trigger, Trigger::automatic);
    EXPECT_EQ(e.from, RouteState::shadowing);
    EXPECT_EQ(e.to, RouteState::promoted);
    EXPECT_EQ(e.from_side, Side::primary);
    EXPECT_EQ(e.to_side, Side::candidate);
    EXPECT_EQ(e.reason, "sprt accepted");
    EXPECT_EQ(e.evidence.samples, 62u);
    EXPECT_EQ(e.evidence.pass_rate, 1.0);
    EXPECT_NEAR(e.evidence.sprt_llr, 62 * kPassStep, 1e-9);
    EXPECT_GE(e.evidence.sprt_llr, kAccept);
    EXPECT_NEAR(e.evidence.wilson_lower, wilson_lower_bound(62, 62), 1e-12);
}

TEST(ControllerFlip, SprtRejectsAtExactly8StraightFails) {
    EXPECT_EQ(std::ceil(kReject / kFailStep), 8.0);
    Script s;
    s.fails(7);
    EXPECT_EQ(s.status().sprt_decision, SprtDecision::undecided);
    EXPECT_EQ(s.status().sprt_rejections, 0u);
    EXPECT_NEAR(s.status().evidence.sprt_llr, 7 * kFailStep, 1e-9);

    s.fails(1);
    EXPECT_EQ(s.status().sprt_decision, SprtDecision::rejected);
    EXPECT_EQ(s.status().sprt_rejections, 1u);
    EXPECT_EQ(s.status().flip_test, 1u);  // the rejected test stays visible until the next verdict
    EXPECT_NEAR(s.status().evidence.sprt_llr, 8 * kFailStep, 1e-9);
    EXPECT_EQ(s.state(), RouteState::shadowing);

    s.fails(1);  // the first verdict of the second test
    EXPECT_EQ(s.status().flip_test, 2u);
    EXPECT_EQ(s.status().sprt_decision, SprtDecision::undecided);
    EXPECT_NEAR(s.status().evidence.sprt_llr, kFailStep, 1e-9);
    EXPECT_NEAR(s.status().sprt_accept, accept_at(2), 1e-12);
}

// After a rejection the next test starts at 0 with a smaller share of the budget: from zero,
// ceil(ln(pi^2 4 / 0.3) / ln(0.90/0.85)) = 86 passes, not the first test's 62.
TEST(ControllerFlip, RejectionStartsTheNextTestWithAHigherBound) {
    EXPECT_EQ(std::ceil(accept_at(2) / kPassStep), 86.0);
    Script s;
    s.fails(8);
    s.passes(85);  // 85 of 93 = 91%: the window and min_samples hold; the second test does not
    EXPECT_EQ(s.state(), RouteState::shadowing);
    EXPECT_EQ(s.status().flip_test, 2u);
    EXPECT_NEAR(s.status().evidence.sprt_llr, 85 * kPassStep, 1e-9);
    EXPECT_EQ(s.status().sprt_decision, SprtDecision::undecided);
    s.passes(1);
    EXPECT_EQ(s.state(), RouteState::promoted);
    EXPECT_NEAR(s.take().at(0).evidence.sprt_llr, 86 * kPassStep, 1e-9);
}

// 30 fails: rejections at the 8th, 16th and 24th, the fourth test at 6 fails; from there
// ceil((ln(pi^2 16 / 0.3) - 6 ln(0.1/0.15)) / ln(0.9/0.85)) = 153 passes.
TEST(ControllerFlip, EachRejectionSpendsMoreOfTheBudget) {
    Script s;
    s.fails(30);
    EXPECT_EQ(s.status().sprt_rejections, 3u);
    EXPECT_EQ(s.status().flip_test, 4u);
    EXPECT_NEAR(s.status().evidence.sprt_llr, 6 * kFailStep, 1e-9);
    const double needed = std::ceil((accept_at(4) - 6 * kFailStep) / kPassStep);
    EXPECT_EQ(needed, 153.0);
    s.passes(152);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    EXPECT_EQ(s.status().evidence.pass_rate, 1.0);
    s.passes(1);
    EXPECT_EQ(s.state(), RouteState::promoted);
}

TEST(ControllerFlip, MinSamplesRespectedAtFullPassRate) {
    auto route = make_route();
    route.promotion.min_samples = 80;
    Script s(route);
    s.passes(79);
    EXPECT_EQ(s.status().sprt_decision, SprtDecision::accepted);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    s.passes(1);
    EXPECT_EQ(s.state(), RouteState::promoted);
    EXPECT_EQ(s.take().at(0).evidence.samples, 80u);
}

TEST(ControllerFlip, HoldRespectedAtFullPassRate) {
    auto route = make_route();
    route.promotion.hold = 10min;
    Script s(route);
    s.passes(62);  // one a second: min_samples reached at the 50th, kT0 + 50s; SPRT at the 62nd
    EXPECT_EQ(s.status().above_threshold_since, kT0 + 50s);
    EXPECT_EQ(s.status().sprt_decision, SprtDecision::accepted);
    s.tick_until(kT0 + 649s);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    s.tick_until(kT0 + 650s);
    EXPECT_EQ(s.state(), RouteState::promoted);
    EXPECT_EQ(s.take().at(0).time, kT0 + 650s);
}

TEST(ControllerFlip, HoldClockRestartsWhenThePassRateDips) {
    auto route = make_route();
    route.promotion.hold = 10min;
    Script s(route);
    s.passes(60);  // above the threshold since kT0 + 50s
    s.fails(7);    // 60/67 < 0.90 at kT0 + 67s
    EXPECT_EQ(s.status().above_threshold_since, std::nullopt);
    s.passes(100);  // 63/70 >= 0.90 again at kT0 + 70s
    EXPECT_EQ(s.status().above_threshold_since, kT0 + 70s);
    s.tick_until(kT0 + 669s);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    s.tick_until(kT0 + 670s);
    EXPECT_EQ(s.state(), RouteState::promoted);
}

TEST(ControllerFlip, NoFlipOnAllErrorData) {
    Script s;
    s.errors(1000);
    s.tick_until(s.now() + 24h, 1min);
    const Status st = s.status();
    EXPECT_EQ(st.state, RouteState::shadowing);
    EXPECT_EQ(st.evidence.samples, 0u);
    EXPECT_EQ(st.evidence.errors, 100u);
    EXPECT_EQ(st.evidence.pass_rate, 0.0);
    EXPECT_EQ(st.evidence.sprt_llr, 0.0);
    EXPECT_EQ(st.evidence_verdicts, 1000u);
    EXPECT_TRUE(st.held_by_judge_errors);
    EXPECT_TRUE(s.take().empty());
}

TEST(ControllerFlip, NoFlipWithoutTraffic) {
    Script s;
    s.tick_until(kT0 + 24h * 30, 1h);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    EXPECT_TRUE(s.take().empty());
}

TEST(ControllerFlip, ModeShadowJudgesButNeverFlips) {
    Script s(with_mode(make_route(), config::PromotionMode::shadow));
    s.passes(1000);
    s.tick_until(s.now() + 24h, 1min);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    EXPECT_EQ(s.status().sprt_decision, SprtDecision::accepted);
    EXPECT_EQ(s.c().promote(s.now(), ""), ManualOutcome::refused);
    EXPECT_EQ(s.c().rollback(s.now(), ""), ManualOutcome::refused);
    EXPECT_TRUE(s.take().empty());
    // A pin still overrides everything.
    EXPECT_EQ(s.c().pin(s.now(), Side::candidate, "try it"), ManualOutcome::applied);
    EXPECT_EQ(s.c().candidate_share(), 1.0);
    EXPECT_EQ(s.c().unpin(s.now(), ""), ManualOutcome::applied);
    EXPECT_EQ(s.state(), RouteState::shadowing);
}

// ---------------------------------------------------------------------------------------------
// Rollback

TEST(ControllerRollback, SequentialTestRollsBackAfter9StraightFails) {
    EXPECT_EQ(std::ceil(kAccept / -kFailStep), 9.0);
    Script s;
    s.flip();
    EXPECT_EQ(s.status().rollback_test, 1u);
    s.fails(8);
    EXPECT_EQ(s.state(), RouteState::promoted);
    EXPECT_NEAR(s.status().evidence.rollback_llr, -8 * kFailStep, 1e-9);
    s.fails(1);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
    EXPECT_EQ(s.c().candidate_share(), 0.0);
    const auto events = s.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].time, s.now());
    EXPECT_EQ(events[0].from, RouteState::promoted);
    EXPECT_EQ(events[0].to, RouteState::rolled_back);
    EXPECT_EQ(events[0].from_side, Side::candidate);
    EXPECT_EQ(events[0].to_side, Side::primary);
    EXPECT_EQ(events[0].reason, "sequential rollback");
    EXPECT_NEAR(events[0].evidence.rollback_llr, -9 * kFailStep, 1e-9);
    // The flip evidence restarts at the rollback.
    const Status st = s.status();
    EXPECT_EQ(st.evidence.samples, 0u);
    EXPECT_EQ(st.evidence.sprt_llr, 0.0);
    EXPECT_EQ(st.cooldown_until, s.now() + 1h);
    EXPECT_EQ(st.since, s.now());
}

TEST(ControllerRollback, RollbackTestRestartsAtTheFlip) {
    Script s;
    s.fails(7);  // before the flip: no part of the rollback test
    while (s.state() == RouteState::shadowing) s.passes(1);
    ASSERT_EQ(s.state(), RouteState::promoted);
    EXPECT_EQ(s.status().evidence.rollback_llr, 0.0);
    s.fails(8);
    EXPECT_EQ(s.state(), RouteState::promoted);
    s.fails(1);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
}

// The rollback test rejects after 53 straight passes (ln 20 / ln(0.90/0.85)) and the next one
// needs ceil(ln(pi^2 4 / 0.3) / ln(0.15/0.10)) = 13 straight fails, not 9.
TEST(ControllerRollback, RejectionStartsTheNextRollbackTestWithAHigherBound) {
    EXPECT_EQ(std::ceil(kReject / -kPassStep), 53.0);
    EXPECT_EQ(std::ceil(accept_at(2) / -kFailStep), 13.0);
    Script s;
    s.flip();
    s.passes(52);
    EXPECT_EQ(s.status().rollback_test, 1u);
    EXPECT_GT(s.status().evidence.rollback_llr, kReject);
    s.passes(1);
    EXPECT_LE(s.status().evidence.rollback_llr, kReject);
    s.fails(12);
    EXPECT_EQ(s.status().rollback_test, 2u);
    EXPECT_NEAR(s.status().rollback_accept, accept_at(2), 1e-12);
    EXPECT_EQ(s.state(), RouteState::promoted);
    s.fails(1);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
}

TEST(ControllerRollback, CandidateErrorRateAboveTwoPercent) {
    Script s;
    s.flip();
    s.live(1, true);
    s.live(49);  // 1 of 50 = 2%: not above
    EXPECT_EQ(s.state(), RouteState::promoted);
    s.live(1, true);  // 2 of 51
    EXPECT_EQ(s.state(), RouteState::rolled_back);
    const auto events = s.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].reason, "candidate error rate");
    EXPECT_EQ(events[0].time, s.now());
    EXPECT_EQ(events[0].evidence.live_requests, 51u);
    EXPECT_NEAR(events[0].evidence.candidate_error_rate, 2.0 / 51, 1e-12);
}

TEST(ControllerRollback, ErrorRateNeedsFiftyRequestsAndSlides) {
    Script s;
    s.flip();
    s.live(2, true);
    s.live(47);  // 2 of 49: too few requests to judge
    EXPECT_EQ(s.state(), RouteState::promoted);

    Script t;
    t.flip();
    t.live(1, true);
    t.live(199);      // the error will slide out of the last 200
    t.live(4, true);  // 4 of the last 200 = 2%
    EXPECT_EQ(t.state(), RouteState::promoted);
    t.live(1, true);  // 5 of 200
    EXPECT_EQ(t.state(), RouteState::rolled_back);
}

TEST(ControllerRollback, CandidateResultsBeforeTheFlipDoNotCount) {
    Script s;
    s.live(100, true);  // a stale snapshot sent these to the candidate while shadowing
    s.flip();
    EXPECT_EQ(s.status().evidence.live_requests, 0u);
    s.live(50);
    EXPECT_EQ(s.state(), RouteState::promoted);
}

TEST(ControllerRollback, VerdictsStoppedForLongerThanHold) {
    auto route = make_route();
    route.promotion.hold = 10min;
    Script s(route);
    s.passes(62);
    s.tick_until(kT0 + 650s);
    ASSERT_EQ(s.state(), RouteState::promoted);
    const TimePoint flip = s.now();
    s.take();

    s.live_until(flip + 300s);
    s.passes(1);  // flip + 301s: the grace starts again
    s.live_until(flip + 901s);
    EXPECT_EQ(s.state(), RouteState::promoted);
    s.live_until(flip + 902s);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
    const auto events = s.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].reason, "verdicts stopped");
    EXPECT_EQ(events[0].time, flip + 902s);
}

TEST(ControllerRollback, VerdictsStoppedUsesStepWhenHoldIsZero) {
    Script s;  // hold 0s, step 30m
    s.flip();
    const TimePoint flip = s.now();
    s.live_until(flip + 30min, 10s);
    EXPECT_EQ(s.state(), RouteState::promoted);
    s.live_until(flip + 30min + 10s, 10s);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
    EXPECT_EQ(s.take().at(0).reason, "verdicts stopped");
}

TEST(ControllerRollback, QuietTrafficIsNotVerdictsStopping) {
    Script s;
    s.flip();
    // Time alone, then a trickle: 0.05 x 90 requests = 4.5 expected mirrors, below 5.
    s.tick_until(s.now() + 24h, 1min);
    s.live_until(s.now() + 90min, 1min);
    EXPECT_EQ(s.state(), RouteState::promoted);
    s.live_until(s.now() + 20min, 1min);  // now well over 5 expected
    EXPECT_EQ(s.state(), RouteState::rolled_back);
}

TEST(ControllerRollback, CooldownBlocksTheNextFlipThenEvidenceRebuilds) {
    Script s;
    s.flip();
    s.fails(9);
    ASSERT_EQ(s.state(), RouteState::rolled_back);
    const TimePoint rolled = s.now();
    s.take();
    s.passes(100);  // all the evidence a flip needs, inside the cooldown
    EXPECT_EQ(s.status().sprt_decision, SprtDecision::accepted);
    s.tick_until(rolled + 1h - 1s);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
    s.tick_until(rolled + 1h);
    EXPECT_EQ(s.state(), RouteState::promoted);
    const auto events = s.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].from, RouteState::rolled_back);
    EXPECT_EQ(events[0].reason, "sprt accepted");
    EXPECT_EQ(events[0].evidence.samples, 100u);  // only verdicts after the rollback
}

TEST(ControllerRollback, EvidenceAfterRollbackStartsFromZero) {
    auto route = make_route();
    route.promotion.cooldown = 0s;
    Script s(route);
    s.flip();
    s.fails(9);
    ASSERT_EQ(s.state(), RouteState::rolled_back);
    // The flip test after a rollback is the next test (k = 2): 86 passes, not 62.
    EXPECT_EQ(s.status().flip_test, 2u);
    s.passes(85);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
    s.passes(1);
    EXPECT_EQ(s.state(), RouteState::promoted);
    // And the rollback test of the second watch is the second rollback test.
    EXPECT_EQ(s.status().rollback_test, 2u);
    s.fails(12);
    EXPECT_EQ(s.state(), RouteState::promoted);
    s.fails(1);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
}

// ---------------------------------------------------------------------------------------------
// Ramp

TEST(ControllerRamp, StepsNeedTimeAndSamples) {
    auto route = make_route();
    route.promotion.ramp = {10, 50, 100};
    Script s(route);
    s.passes(62);
    ASSERT_EQ(s.state(), RouteState::ramping);
    const TimePoint flip = s.now();
    EXPECT_EQ(s.c().candidate_share(), 0.10);
    EXPECT_EQ(s.status().ramp_step, 0u);
    EXPECT_EQ(s.take().at(0).to, RouteState::ramping);

    s.passes(50);  // samples enough, time not
    s.tick_until(flip + 30min - 1s);
    EXPECT_EQ(s.status().ramp_step, 0u);
    s.tick_until(flip + 30min);
    EXPECT_EQ(s.status().ramp_step, 1u);
    EXPECT_EQ(s.c().candidate_share(), 0.50);
    auto events = s.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, EventKind::ramp_step);
    EXPECT_EQ(events[0].from, RouteState::ramping);
    EXPECT_EQ(events[0].to, RouteState::ramping);
    EXPECT_EQ(events[0].candidate_share, 0.50);

    s.tick_until(s.now() + 2h, 1min);  // time enough, samples not
    EXPECT_EQ(s.status().ramp_step, 1u);
    s.passes(49);
    EXPECT_EQ(s.state(), RouteState::ramping);
    s.passes(1);
    EXPECT_EQ(s.state(), RouteState::promoted);
    events = s.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, EventKind::transition);
    EXPECT_EQ(events[0].from_side, Side::candidate);
    EXPECT_EQ(events[0].to_side, Side::candidate);
}

TEST(ControllerRamp, RollbackWhileRamping) {
    auto route = make_route();
    route.promotion.ramp = {10, 50, 100};
    Script s(route);
    s.passes(62);
    ASSERT_EQ(s.state(), RouteState::ramping);
    s.fails(8);
    EXPECT_EQ(s.state(), RouteState::ramping);
    s.fails(1);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
    EXPECT_EQ(s.c().candidate_share(), 0.0);
}

TEST(ControllerRamp, MirrorPolicyFollowsTheServingSide) {
    auto route = make_route();
    route.promotion.ramp = {10, 100};
    Script s(route);
    EXPECT_EQ(s.c().mirror_rate(), 0.1);
    EXPECT_EQ(s.c().mirror_target(Side::primary), Side::candidate);
    s.passes(62);
    ASSERT_EQ(s.state(), RouteState::ramping);
    EXPECT_EQ(s.c().mirror_rate(), 0.1);
    EXPECT_EQ(s.c().mirror_target(Side::candidate), Side::primary);
    EXPECT_EQ(s.c().mirror_target(Side::primary), Side::candidate);
    EXPECT_EQ(s.c().promote(s.now(), ""), ManualOutcome::applied);
    EXPECT_EQ(s.c().mirror_rate(), 0.05);  // shadow_after_promotion: the reverse shadow
    EXPECT_EQ(s.c().mirror_target(Side::candidate), Side::primary);
}

// ---------------------------------------------------------------------------------------------
// Judge error runs

TEST(ControllerJudgeErrors, RunOfFiveHoldsAFlip) {
    auto route = make_route();
    route.promotion.hold = 10min;
    Script s(route);
    s.passes(62);  // would flip at kT0 + 650s
    s.errors(kJudgeErrorHoldRun);
    EXPECT_TRUE(s.status().held_by_judge_errors);
    s.tick_until(kT0 + 2h, 1min);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    s.passes(1);  // the run ends
    EXPECT_EQ(s.state(), RouteState::promoted);
}

TEST(ControllerJudgeErrors, RunOfFourDoesNotHold) {
    auto route = make_route();
    route.promotion.hold = 10min;
    Script s(route);
    s.passes(62);
    s.errors(kJudgeErrorHoldRun - 1);
    EXPECT_FALSE(s.status().held_by_judge_errors);
    s.tick_until(kT0 + 650s);
    EXPECT_EQ(s.state(), RouteState::promoted);
}

TEST(ControllerJudgeErrors, RunHoldsARampStepAndStallRollback) {
    auto route = make_route();
    route.promotion.ramp = {10, 100};
    Script s(route);
    s.passes(62);
    const TimePoint flip = s.now();
    s.passes(50);
    s.errors(5);
    s.live_until(flip + 3h, 10s);  // step time passed; verdicts "stopped" long ago
    EXPECT_EQ(s.state(), RouteState::ramping);
    EXPECT_EQ(s.status().ramp_step, 0u);
    s.passes(1);
    EXPECT_EQ(s.state(), RouteState::promoted);
}

TEST(ControllerJudgeErrors, RunDoesNotHoldTheLiveErrorRollback) {
    Script s;
    s.flip();
    s.errors(10);
    s.live(48);
    s.live(2, true);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
    EXPECT_EQ(s.take().at(0).reason, "candidate error rate");
}

// ---------------------------------------------------------------------------------------------
// Pins, manual commands, modes

TEST(ControllerPins, ManualPinPrimaryWinsOverPerfectEvidence) {
    Script s;
    EXPECT_EQ(s.c().pin(s.now(), Side::primary, "freeze for the launch"), ManualOutcome::applied);
    auto events = s.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].trigger, Trigger::manual);
    EXPECT_EQ(events[0].reason, "freeze for the launch");
    EXPECT_EQ(events[0].to, RouteState::pinned);
    s.passes(200);
    EXPECT_EQ(s.state(), RouteState::pinned);
    EXPECT_EQ(s.c().candidate_share(), 0.0);
    EXPECT_EQ(s.c().promote(s.now(), ""), ManualOutcome::refused);
    EXPECT_EQ(s.c().rollback(s.now(), ""), ManualOutcome::refused);
    EXPECT_EQ(s.c().pin(s.now(), Side::primary, ""), ManualOutcome::unchanged);
    EXPECT_EQ(s.c().unpin(s.now(), ""), ManualOutcome::applied);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    EXPECT_EQ(s.take().at(0).reason, "manual unpin");
    s.passes(1);  // the evidence gathered while pinned counts
    EXPECT_EQ(s.state(), RouteState::promoted);
}

TEST(ControllerPins, ManualPinCandidateSurvivesBadEvidence) {
    Script s;
    s.flip();
    EXPECT_EQ(s.c().pin(s.now(), Side::candidate, ""), ManualOutcome::applied);
    EXPECT_EQ(s.take().at(0).reason, "manual pin");
    s.fails(50);
    s.live(100, true);
    EXPECT_EQ(s.state(), RouteState::pinned);
    EXPECT_EQ(s.c().candidate_share(), 1.0);
    EXPECT_EQ(s.c().mirror_rate(), 0.05);
    EXPECT_EQ(s.c().unpin(s.now(), ""), ManualOutcome::applied);
    EXPECT_EQ(s.state(), RouteState::promoted);        // the serving side stays
    EXPECT_EQ(s.status().evidence.rollback_llr, 0.0);  // the watch starts at the unpin
    EXPECT_EQ(s.status().evidence.live_requests, 0u);
}

TEST(ControllerPins, PinModesRefuseEveryManualCommand) {
    Script s(with_mode(make_route(), config::PromotionMode::pin_candidate));
    EXPECT_EQ(s.state(), RouteState::pinned);
    EXPECT_EQ(s.c().candidate_share(), 1.0);
    s.fails(100);
    s.live(100, true);
    EXPECT_EQ(s.state(), RouteState::pinned);
    EXPECT_EQ(s.c().promote(s.now(), ""), ManualOutcome::refused);
    EXPECT_EQ(s.c().rollback(s.now(), ""), ManualOutcome::refused);
    EXPECT_EQ(s.c().pin(s.now(), Side::primary, ""), ManualOutcome::refused);
    EXPECT_EQ(s.c().unpin(s.now(), ""), ManualOutcome::refused);
    EXPECT_TRUE(s.take().empty());

    Script p(with_mode(make_route(), config::PromotionMode::pin_primary));
    p.passes(500);
    EXPECT_EQ(p.state(), RouteState::pinned);
    EXPECT_EQ(p.c().candidate_share(), 0.0);
}

TEST(ControllerManual, PromoteAndRollbackAreRecordedLikeAutomaticChanges) {
    Script s;
    EXPECT_EQ(s.c().rollback(s.now(), ""), ManualOutcome::unchanged);  // primary already serves
    EXPECT_EQ(s.c().promote(s.now(), "ticket 42"), ManualOutcome::applied);
    EXPECT_EQ(s.c().promote(s.now(), ""), ManualOutcome::unchanged);
    EXPECT_EQ(s.c().candidate_share(), 1.0);
    s.passes(10);
    EXPECT_EQ(s.c().rollback(s.now(), ""), ManualOutcome::applied);
    const auto events = s.take();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].trigger, Trigger::manual);
    EXPECT_EQ(events[0].reason, "ticket 42");
    EXPECT_EQ(events[0].to, RouteState::promoted);
    EXPECT_EQ(events[1].reason, "manual rollback");
    EXPECT_EQ(events[1].to, RouteState::rolled_back);
    EXPECT_EQ(events[1].evidence.samples, 10u);
    EXPECT_EQ(s.status().cooldown_until, s.now() + 1h);  // like an automatic rollback
}

TEST(ControllerModes, ModeChangesApplyAtOnce) {
    Script s;  // no evidence, so a return to auto does not flip again by itself
    ASSERT_EQ(s.c().promote(s.now(), ""), ManualOutcome::applied);
    s.take();
    const auto reload = [&](config::PromotionMode mode) {
        s.c().reconfigure(s.now(), with_mode(make_route(), mode), "fp-1");
        const auto events = s.take();
        return events.empty() ? TransitionEvent{} : events.back();
    };
    auto e = reload(config::PromotionMode::pin_primary);
    EXPECT_EQ(s.state(), RouteState::pinned);
    EXPECT_EQ(s.c().candidate_share(), 0.0);
    EXPECT_EQ(e.trigger, Trigger::config);
    EXPECT_EQ(e.reason, "mode pin-primary");
    reload(config::PromotionMode::automatic);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    reload(config::PromotionMode::pin_candidate);
    EXPECT_EQ(s.c().candidate_share(), 1.0);
    e = reload(config::PromotionMode::automatic);
    EXPECT_EQ(s.state(), RouteState::promoted);
    EXPECT_EQ(e.reason, "mode auto");
    e = reload(config::PromotionMode::shadow);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    EXPECT_EQ(e.reason, "mode shadow");
}

TEST(ControllerModes, ManualPinOutlivesAModeChangeToShadow) {
    Script s;
    s.c().pin(s.now(), Side::candidate, "");
    s.c().reconfigure(s.now(), with_mode(make_route(), config::PromotionMode::shadow), "fp-1");
    EXPECT_EQ(s.state(), RouteState::pinned);
    EXPECT_EQ(s.c().candidate_share(), 1.0);
}

// ---------------------------------------------------------------------------------------------
// Evidence fingerprint and reloads

TEST(ControllerEvidence, FingerprintChangeStartsTheEvidenceAfresh) {
    Script s;
    s.fails(8);  // one rejection: the second test runs
    s.passes(51);
    ASSERT_EQ(s.status().flip_test, 2u);
    s.c().reconfigure(s.now(), make_route(), "fp-2");
    const auto events = s.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, EventKind::evidence_reset);
    EXPECT_EQ(events[0].trigger, Trigger::config);
    EXPECT_EQ(events[0].reason, "evidence fingerprint changed");
    EXPECT_EQ(events[0].from, events[0].to);
    EXPECT_EQ(events[0].evidence.samples, 59u);  // what was discarded
    const Status st = s.status();
    EXPECT_EQ(st.fingerprint, "fp-2");
    EXPECT_EQ(st.evidence.samples, 0u);
    EXPECT_EQ(st.evidence.sprt_llr, 0.0);
    EXPECT_EQ(st.evidence_verdicts, 0u);
    EXPECT_EQ(st.total_verdicts, 59u);
    EXPECT_EQ(st.flip_test, 1u);  // a different candidate: a new budget
    s.passes(61);
    EXPECT_EQ(s.state(), RouteState::shadowing);
    s.passes(1);
    EXPECT_EQ(s.state(), RouteState::promoted);
}

TEST(ControllerEvidence, SameFingerprintKeepsTheEvidence) {
    Script s;
    s.passes(61);
    auto route = make_route();
    route.shadow.sample_rate = 0.5;
    route.promotion.cooldown = 2h;
    s.c().reconfigure(s.now(), route, "fp-1");
    EXPECT_TRUE(s.take().empty());
    EXPECT_EQ(s.c().mirror_rate(), 0.5);
    s.passes(1);
    EXPECT_EQ(s.state(), RouteState::promoted);
}

TEST(ControllerEvidence, FingerprintChangeKeepsTheServingState) {
    Script s;
    s.flip();
    s.fails(5);
    s.c().reconfigure(s.now(), make_route(), "fp-2");
    EXPECT_EQ(s.state(), RouteState::promoted);
    EXPECT_EQ(s.status().evidence.rollback_llr, 0.0);
    EXPECT_EQ(s.status().rollback_test, 1u);
    s.fails(8);  // the new candidate's own rollback test, from 0
    EXPECT_EQ(s.state(), RouteState::promoted);
    s.fails(1);
    EXPECT_EQ(s.state(), RouteState::rolled_back);
}

TEST(ControllerEvidence, ChangedHypothesesRestartTheSequentialTests) {
    Script s;
    s.passes(40);
    auto route = make_route();
    route.promotion.threshold = 0.92;
    s.c().reconfigure(s.now(), route, "fp-1");
    const auto events = s.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].reason, "test parameters changed");
    EXPECT_EQ(s.status().evidence.sprt_llr, 0.0);
    EXPECT_EQ(s.status().flip_test, 2u);          // new hypotheses; the budget spent stays spent
    EXPECT_EQ(s.status().evidence.samples, 40u);  // the window is still good evidence
}

TEST(ControllerEvidence, SmallerWindowDropsTheOldestVerdicts) {
    Script s;
    s.fails(10);
    s.passes(90);
    auto route = make_route();
    route.promotion.window = 50;
    route.promotion.min_samples = 20;
    s.c().reconfigure(s.now(), route, "fp-1");
    EXPECT_EQ(s.status().evidence.samples, 50u);
    EXPECT_EQ(s.status().evidence.pass_rate, 1.0);
}

// ---------------------------------------------------------------------------------------------
// Persistence

/// One step of a long mixed script, chosen by `rng` from the controller's current state.
void random_step(Controller& c, TimePoint& now, std::mt19937_64& rng, int phase_pass_percent) {
    std::uniform_int_distribution<int> percent(0, 99);
    now += std::chrono::seconds(1 + percent(rng) % 3);
    const int what = percent(rng);
    if (what < 35) {
        const int roll = percent(rng);
        const VerdictKind kind = roll < 3                    ? VerdictKind::error
                                 : roll < phase_pass_percent ? VerdictKind::pass
                                                             : VerdictKind::fail;
        c.record_verdict(now, kind);
    } else if (what < 95) {
        const bool candidate = percent(rng) < c.candidate_share() * 100;
        c.record_live_result(now, candidate, percent(rng) == 0);
    } else {
        c.tick(now);
    }
}

config::RouteConfig restart_route() {
    auto route = make_route();
    route.promotion.ramp = {10, 50, 100};
    route.promotion.hold = 2min;
    route.promotion.step = 10min;
    route.promotion.cooldown = 20min;
    return route;
}

/// Runs the script, saving and restoring the controller every `restore_every` steps (0: never).
/// Returns all events and the final status.
std::pair<std::vector<TransitionEvent>, Status> run_script(int restore_every) {
    const auto route = restart_route();
    Controller c(route, "fp", kT0);
    TimePoint now = kT0;
    std::mt19937_64 rng(20240611);
    std::vector<TransitionEvent> events;
    const int phases[] = {98, 70, 98, 99, 60, 97};
    for (int step = 0; step < 12000; ++step) {
        random_step(c, now, rng, phases[step / 2000]);
        for (auto& e : c.take_events()) events.push_back(std::move(e));
        if (restore_every != 0 && step % restore_every == 0) {
            c = Controller::from_json(c.to_json(), route, "fp", now);
        }
    }
    return {events, c.status()};
}

TEST(ControllerPersistence, RestartMidRunGivesIdenticalDecisions) {
    const auto [events, status] = run_script(0);
    // The script must exercise the interesting paths, or the comparison proves little.
    int flips = 0, rollbacks = 0, steps = 0;
    for (const auto& e : events) {
        flips += e.from_side == Side::primary && e.to_side == Side::candidate;
        rollbacks += e.to == RouteState::rolled_back;
        steps += e.kind == EventKind::ramp_step;
    }
    EXPECT_GE(flips, 2);
    EXPECT_GE(rollbacks, 2);
    EXPECT_GE(steps, 2);

    for (const int every : {6000, 997, 1}) {
        const auto [restored_events, restored_status] = run_script(every);
        EXPECT_EQ(restored_events, events) << "restore every " << every;
        EXPECT_EQ(restored_status, status) << "restore every " << every;
    }
}

TEST(ControllerPersistence, QueuedEventsSurviveARestart) {
    Script s;
    s.passes(62);
    const std::string saved = s.c().to_json();
    auto restored = Controller::from_json(saved, make_route(), "fp-1", s.now());
    EXPECT_EQ(restored.take_events(), s.take());
}

TEST(ControllerPersistence, ConfigChangedWhileDownAppliesOnRestore) {
    Script s;
    s.flip();
    const std::string saved = s.c().to_json();
    auto restored = Controller::from_json(
        saved, with_mode(make_route(), config::PromotionMode::pin_primary), "fp-2", s.now() + 1h);
    const auto events = restored.take_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].reason, "evidence fingerprint changed");
    EXPECT_EQ(events[1].reason, "mode pin-primary");
    EXPECT_EQ(restored.state(), RouteState::pinned);
    EXPECT_EQ(restored.candidate_share(), 0.0);
}

// The spent budget is durable: a restart must not hand out a fresh alpha.
TEST(ControllerPersistence, SpentBudgetSurvivesARestart) {
    Script s;
    s.fails(17);  // two rejections: the third flip test runs
    ASSERT_EQ(s.status().flip_test, 3u);
    const std::string saved = s.c().to_json();
    EXPECT_NE(saved.find(R"("flip_test":3)"), std::string::npos) << saved;
    EXPECT_NE(saved.find(R"("rollback_test":0)"), std::string::npos) << saved;
    const auto restored = Controller::from_json(saved, make_route(), "fp-1", s.now());
    EXPECT_EQ(restored.status(), s.status());

    Script t;
    t.flip();
    t.passes(54);  // the first rollback test rejected, the second runs
    ASSERT_EQ(t.status().rollback_test, 2u);
    const auto watched = Controller::from_json(t.c().to_json(), make_route(), "fp-1", t.now());
    EXPECT_EQ(watched.status().rollback_test, 2u);
    EXPECT_EQ(watched.status(), t.status());
}

// A state saved before the counters existed: each starts at 1 + total_verdicts / (the fewest
// verdicts a rejection takes: 8 fails, 53 passes), at least the rejections there could have been.
TEST(ControllerPersistence, OldStateWithoutTestCountersRestoresConservatively) {
    const auto strip = [](std::string json, const std::string& field) {
        const auto at = json.find("\"" + field + "\":");
        EXPECT_NE(at, std::string::npos) << field;
        const auto end = json.find(',', at);
        json.erase(at, end - at + 1);
        return json;
    };
    Script s;
    s.passes(300);  // promoted after 62; 238 verdicts into the first rollback test's watch
    s.fails(5);
    ASSERT_EQ(s.state(), RouteState::promoted);
    const std::string old = strip(strip(s.c().to_json(), "flip_test"), "rollback_test");
    EXPECT_EQ(old.find("flip_test"), std::string::npos);
    const auto restored = Controller::from_json(old, make_route(), "fp-1", s.now());
    EXPECT_EQ(restored.status().flip_test, 1u + 305u / 8u);
    EXPECT_EQ(restored.status().rollback_test, 1u + 305u / 53u);
    EXPECT_GE(restored.status().flip_test, s.status().flip_test);
    EXPECT_GE(restored.status().rollback_test, s.status().rollback_test);
    EXPECT_NEAR(restored.status().sprt_accept, accept_at(39), 1e-12);

    Script quiet;  // shadowing: no rollback test has run
    quiet.fails(20);
    const auto shadowing =
        Controller::from_json(strip(strip(quiet.c().to_json(), "flip_test"), "rollback_test"),
                              make_route(), "fp-1", quiet.now());
    EXPECT_EQ(shadowing.status().flip_test, 1u + 20u / 8u);
    EXPECT_EQ(shadowing.status().rollback_test, 0u);
}

TEST(ControllerPersistence, BadStateIsRejected) {
    const auto route = make_route();
    for (const char* text : {"", "not json", "[]", "{}", R"({"version": 2})"}) {
        EXPECT_THROW(Controller::from_json(text, route, "fp", kT0), std::invalid_argument) << text;
    }
    std::string json = Script().c().to_json();
    json.replace(json.find("\"shadowing\""), 11, "\"flying\"");
    EXPECT_THROW(Controller::from_json(json, route, "fp", kT0), std::invalid_argument);
    std::string zero = Script().c().to_json();
    zero.replace(zero.find(R"("flip_test":1)"), 13, R"("flip_test":0)");
    EXPECT_THROW(Controller::from_json(zero, route, "fp", kT0), std::invalid_argument);
}

TEST(ControllerPersistence, EventJsonCarriesTheNumbers) {
    Script s;
    s.passes(62);
    const std::string json = to_json(s.take().at(0));
    EXPECT_NE(json.find(R"("time":"2023-11-14T22:14:22.000Z")"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("reason":"sprt accepted")"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("samples":62)"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("to_side":"candidate")"), std::string::npos) << json;
}

// ---------------------------------------------------------------------------------------------
// Statistics

TEST(ControllerStatistics, WilsonLowerBound) {
    EXPECT_EQ(wilson_lower_bound(0, 0), 0.0);
    EXPECT_EQ(wilson_lower_bound(0, 10), 0.0);
    EXPECT_NEAR(wilson_lower_bound(90, 100), 0.825634, 1e-6);
    EXPECT_NEAR(wilson_lower_bound(10, 10), 10.0 / (10.0 + 1.959963984540054 * 1.959963984540054),
                1e-12);
}

/// Share of `runs` simulated routes (hold 0s, min_samples 50, window 100, defaults otherwise)
/// that flip within `verdicts` verdicts at a true pass rate of `pass_rate`.
double simulated_flip_rate(double pass_rate, int runs, int verdicts, std::uint64_t seed) {
    const auto route = make_route();
    std::mt19937_64 rng(seed);  // mt19937_64's output is fixed by the standard
    int flips = 0;
    for (int run = 0; run < runs; ++run) {
        Controller c(route, "sim", kT0);
        TimePoint now = kT0;
        for (int i = 0; i < verdicts; ++i) {
            now += 1s;
            const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
            c.record_verdict(now, u < pass_rate ? VerdictKind::pass : VerdictKind::fail);
            if (c.state() != RouteState::shadowing) {
                ++flips;
                break;
            }
        }
    }
    return static_cast<double>(flips) / runs;
}

// The contract's promise about the flip test as a whole (window, min_samples and the SPRT
// together): over 2,000 routes of up to 1,000 verdicts each, a candidate exactly at
// rollback_threshold flips at most 6% of the time, one exactly at threshold at least 93%.
TEST(ControllerSimulation, FlipRatesAtTheRollbackThresholdAndAtTheThreshold) {
    const double at_85 = simulated_flip_rate(0.85, 2000, 1000, 85);
    const double at_90 = simulated_flip_rate(0.90, 2000, 1000, 90);
    RecordProperty("p_flip_at_85", std::to_string(at_85));
    RecordProperty("p_flip_at_90", std::to_string(at_90));
    std::printf("P(flip) at 85%%: %.4f, at 90%%: %.4f\n", at_85, at_90);
    EXPECT_LE(at_85, 0.06);
    EXPECT_GE(at_90, 0.93);
}

}  // namespace
}  // namespace turnout::shadow
