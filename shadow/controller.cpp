// The controller's state machine: inputs, decisions, changes, manual commands and outputs.
#include "shadow/controller.hpp"

#include <algorithm>
#include <utility>

namespace turnout::shadow {
namespace {

bool is_pin_mode(config::PromotionMode mode) {
    return mode == config::PromotionMode::pin_primary ||
           mode == config::PromotionMode::pin_candidate;
}

// Drops the oldest entries beyond `limit`, keeping `count_true` (the trues in `ring`) right.
void trim(std::deque<bool>& ring, std::size_t limit, std::uint32_t& count_true) {
    while (ring.size() > limit) {
        if (ring.front()) --count_true;
        ring.pop_front();
    }
}

void push_bounded(std::deque<bool>& ring, bool value, std::size_t limit,
                  std::uint32_t& count_true) {
    ring.push_back(value);
    if (value) ++count_true;
    trim(ring, limit, count_true);
}

// The side a pin mode serves from.
Side pinned_side_of(config::PromotionMode mode) {
    return mode == config::PromotionMode::pin_primary ? Side::primary : Side::candidate;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Configuration

Controller::Controller(const config::RouteConfig& route, std::string fingerprint, TimePoint now)
    : fingerprint_(std::move(fingerprint)), since_(now), step_started_(now), stall_anchor_(now) {
    apply_config(route);
    if (is_pin_mode(promotion_.mode)) {
        state_ = RouteState::pinned;
        pinned_side_ = pinned_side_of(promotion_.mode);
    }
}

bool Controller::watched(RouteState state) {
    return state == RouteState::ramping || state == RouteState::promoted;
}

void Controller::apply_config(const config::RouteConfig& route) {
    promotion_ = route.promotion;
    if (promotion_.ramp.empty()) promotion_.ramp = {100};
    promotion_.window = std::max<std::uint32_t>(promotion_.window, 1);
    sample_rate_ = route.shadow.sample_rate;
    steps_ = sprt_steps(promotion_);
    trim(window_, promotion_.window, window_passes_);
    trim(recent_, promotion_.window, recent_errors_);
}

void Controller::reconfigure(TimePoint now, const config::RouteConfig& route,
                             std::string fingerprint) {
    const config::PromotionMode old_mode = promotion_.mode;
    const SprtSteps old_steps = steps_;
    const double old_share = candidate_share();
    apply_config(route);
    if (fingerprint != fingerprint_) {
        fingerprint_ = std::move(fingerprint);
        reset_evidence(now, "evidence fingerprint changed");
    } else if (old_steps.pass != steps_.pass || old_steps.fail != steps_.fail ||
               old_steps.alpha != steps_.alpha) {
        restart_tests(now);
    }
    update_hold_clock(now);
    if (promotion_.mode != old_mode) {
        apply_mode(now, old_mode);
    } else if (state_ == RouteState::ramping) {
        apply_ramp_change(now, old_share);
    }
    decide(now);
}

void Controller::apply_mode(TimePoint now, config::PromotionMode old_mode) {
    const std::string reason = "mode " + std::string(to_string(promotion_.mode));
    const bool pinned_by_mode = state_ == RouteState::pinned && is_pin_mode(old_mode);
    switch (promotion_.mode) {
        case config::PromotionMode::pin_primary:
        case config::PromotionMode::pin_candidate: {
            const Side side = pinned_side_of(promotion_.mode);
            if (state_ != RouteState::pinned || pinned_side_ != side) {
                transition(now, RouteState::pinned, 0, Trigger::config, reason, side);
            }
            return;
        }
        case config::PromotionMode::shadow:
            // A manual pin outlives the mode change; anything else becomes judge-only.
            if (state_ == RouteState::pinned && !pinned_by_mode) return;
            if (state_ != RouteState::shadowing) {
                transition(now, RouteState::shadowing, 0, Trigger::config, reason);
            }
            return;
        case config::PromotionMode::automatic:
            if (pinned_by_mode) transition(now, unpinned_state(), 0, Trigger::config, reason);
            return;
    }
}

void Controller::apply_ramp_change(TimePoint now, double old_share) {
    if (ramp_done(ramp_step_)) {
        transition(now, RouteState::promoted, 0, Trigger::config, "ramp changed");
    } else if (candidate_share() != old_share) {
        transition(now, RouteState::ramping, ramp_step_, Trigger::config, "ramp changed");
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs

void Controller::record_verdict(TimePoint now, VerdictKind verdict) {
    decide(now);  // whatever fell due before this verdict arrived
    ++total_verdicts_;
    ++evidence_verdicts_;
    last_verdict_ = now;
    stall_anchor_ = now;
    mirrors_expected_ = 0.0;
    add_to_window(verdict);
    if (verdict == VerdictKind::error) {
        ++error_run_;
    } else {
        error_run_ = 0;
        update_sequential_tests(verdict == VerdictKind::pass);
        if (state_ == RouteState::ramping) ++step_samples_;
    }
    update_hold_clock(now);
    decide(now);
}

void Controller::record_live_result(TimePoint now, bool served_by_candidate, bool error) {
    decide(now);
    mirrors_expected_ += mirror_rate();
    // Candidate results from before a rollback (a stale route snapshot) must not count.
    if (served_by_candidate && live_side() == Side::candidate) {
        push_bounded(live_, error, kLiveWindow, live_errors_);
    }
    decide(now);
}

void Controller::tick(TimePoint now) { decide(now); }

void Controller::add_to_window(VerdictKind verdict) {
    push_bounded(recent_, verdict == VerdictKind::error, promotion_.window, recent_errors_);
    if (verdict != VerdictKind::error) {
        push_bounded(window_, verdict == VerdictKind::pass, promotion_.window, window_passes_);
    }
}

void Controller::update_sequential_tests(bool pass) {
    // A test that rejected stays visible (status "rejected") until the next verdict, which is
    // the first of the next test: it starts at 0 and accepts at the next, higher bound.
    if (flip_llr_ <= steps_.reject) {
        flip_llr_ = 0.0;
        ++flip_test_;
    }
    flip_llr_ += pass ? steps_.pass : steps_.fail;
    if (flip_llr_ <= steps_.reject) ++sprt_rejections_;
    // The rollback test swaps the hypotheses: each increment changes sign.
    if (watched(state_)) {
        if (rollback_llr_ <= steps_.reject) {
            rollback_llr_ = 0.0;
            ++rollback_test_;
        }
        rollback_llr_ -= pass ? steps_.pass : steps_.fail;
    }
}

void Controller::update_hold_clock(TimePoint now) {
    const std::size_t samples = window_.size();
    const bool holds = samples > 0 && samples >= promotion_.min_samples &&
                       static_cast<double>(window_passes_) / samples >= promotion_.threshold;
    if (!holds) {
        above_since_.reset();
    } else if (!above_since_) {
        above_since_ = now;
    }
}

// ---------------------------------------------------------------------------------------------
// Decisions

void Controller::decide(TimePoint now) {
    if (promotion_.mode != config::PromotionMode::automatic) return;
    switch (state_) {
        case RouteState::shadowing:
        case RouteState::rolled_back:
            try_flip(now);
            return;
        case RouteState::ramping:
            if (!try_roll_back(now)) try_advance_ramp(now);
            return;
        case RouteState::promoted:
            try_roll_back(now);
            return;
        case RouteState::pinned:
            return;
    }
}

bool Controller::try_flip(TimePoint now) {
    if (held_by_judge_errors()) return false;
    if (cooldown_until_ && now < *cooldown_until_) return false;
    if (window_.size() < promotion_.min_samples || !above_since_) return false;
    if (now - *above_since_ < promotion_.hold || flip_llr_ < flip_accept()) return false;
    enter_ramp_step(now, 0, Trigger::automatic, "sprt accepted");
    return true;
}

bool Controller::try_advance_ramp(TimePoint now) {
    if (held_by_judge_errors()) return false;
    if (now - step_started_ < promotion_.step || step_samples_ < promotion_.min_samples) {
        return false;
    }
    enter_ramp_step(now, ramp_step_ + 1, Trigger::automatic, "ramp step");
    return true;
}

bool Controller::ramp_done(std::size_t step) const {
    return step >= promotion_.ramp.size() || promotion_.ramp[step] >= 100;
}

void Controller::enter_ramp_step(TimePoint now, std::size_t step, Trigger trigger,
                                 std::string reason) {
    if (ramp_done(step)) {
        transition(now, RouteState::promoted, 0, trigger, std::move(reason));
    } else {
        transition(now, RouteState::ramping, step, trigger, std::move(reason));
    }
}

bool Controller::try_roll_back(TimePoint now) {
    const char* reason = nullptr;
    // The live error rate is not judge evidence, so a judge-error run does not hold it.
    if (live_.size() >= kLiveMinRequests &&
        static_cast<double>(live_errors_) / live_.size() > kLiveMaxErrorRate) {
        reason = "candidate error rate";
    } else if (held_by_judge_errors()) {
        return false;
    } else if (rollback_llr_ >= rollback_accept()) {
        reason = "sequential rollback";
    } else if (verdicts_stopped(now)) {
        reason = "verdicts stopped";
    } else {
        return false;
    }
    transition(now, RouteState::rolled_back, 0, Trigger::automatic, reason);
    return true;
}

bool Controller::verdicts_stopped(TimePoint now) const {
    // hold 0s means "at once" for the flip; as a grace for silence it would mean "never a
    // pause", so the step duration stands in.
    const config::Duration grace =
        promotion_.hold > config::Duration::zero() ? promotion_.hold : promotion_.step;
    if (grace <= config::Duration::zero()) return false;
    return now - stall_anchor_ > grace && mirrors_expected_ >= kStallMinExpectedMirrors;
}

// ---------------------------------------------------------------------------------------------
// Changes

void Controller::transition(TimePoint now, RouteState to, std::size_t ramp_step, Trigger trigger,
                            std::string reason, Side pin) {
    const RouteState from = state_;
    const Side from_side = live_side();
    const Evidence before = evidence();
    state_ = to;
    ramp_step_ = ramp_step;
    if (to == RouteState::pinned) pinned_side_ = pin;
    since_ = now;
    if (watched(to) && !watched(from)) watch_candidate(now);
    if (to == RouteState::ramping) {
        step_started_ = now;
        step_samples_ = 0;
    }
    if (to == RouteState::rolled_back) {
        cooldown_until_ = now + promotion_.cooldown;
        restart_flip_evidence();
    }
    const EventKind kind = from == RouteState::ramping && to == RouteState::ramping
                               ? EventKind::ramp_step
                               : EventKind::transition;
    push_event(now, kind, trigger, from, from_side, std::move(reason), before);
}

void Controller::watch_candidate(TimePoint now) {
    start_rollback_test();
    live_.clear();
    live_errors_ = 0;
    step_started_ = now;
    step_samples_ = 0;
    stall_anchor_ = now;
    mirrors_expected_ = 0.0;
}

void Controller::start_rollback_test() {
    rollback_llr_ = 0.0;
    // A rollback test runs only while the candidate is live; each one is the next k.
    if (watched(state_)) ++rollback_test_;
}

void Controller::restart_flip_evidence() {
    window_.clear();
    window_passes_ = 0;
    recent_.clear();
    recent_errors_ = 0;
    flip_llr_ = 0.0;
    ++flip_test_;  // a new test, with the next share of the budget
    sprt_rejections_ = 0;
    above_since_.reset();
    evidence_verdicts_ = 0;
}

void Controller::reset_evidence(TimePoint now, std::string reason) {
    const Evidence before = evidence();
    restart_flip_evidence();
    // New evidence about a different candidate (or judge): a new budget of alpha.
    flip_test_ = 1;
    rollback_test_ = 0;
    error_run_ = 0;  // the judge may be a different one now
    watch_candidate(now);
    push_event(now, EventKind::evidence_reset, Trigger::config, state_, live_side(),
               std::move(reason), before);
}

void Controller::restart_tests(TimePoint now) {
    const Evidence before = evidence();
    flip_llr_ = 0.0;
    ++flip_test_;  // new hypotheses, but the budget spent stays spent
    start_rollback_test();
    sprt_rejections_ = 0;
    push_event(now, EventKind::evidence_reset, Trigger::config, state_, live_side(),
               "test parameters changed", before);
}

RouteState Controller::unpinned_state() const {
    if (promotion_.mode == config::PromotionMode::shadow || pinned_side_ == Side::primary) {
        return RouteState::shadowing;
    }
    return RouteState::promoted;
}

void Controller::push_event(TimePoint now, EventKind kind, Trigger trigger, RouteState from,
                            Side from_side, std::string reason, const Evidence& evidence) {
    events_.push_back({.time = now,
                       .kind = kind,
                       .trigger = trigger,
                       .from = from,
                       .to = state_,
                       .from_side = from_side,
                       .to_side = live_side(),
                       .candidate_share = candidate_share(),
                       .ramp_step = ramp_step_,
                       .reason = std::move(reason),
                       .evidence = evidence});
}

// ---------------------------------------------------------------------------------------------
// Manual commands

ManualOutcome Controller::manual(TimePoint now, bool refused, bool unchanged, RouteState to,
                                 std::string reason, std::string_view fallback, Side pin) {
    if (refused) return ManualOutcome::refused;
    if (unchanged) return ManualOutcome::unchanged;
    transition(now, to, 0, Trigger::manual,
               reason.empty() ? std::string(fallback) : std::move(reason), pin);
    return ManualOutcome::applied;
}

ManualOutcome Controller::promote(TimePoint now, std::string reason) {
    const bool refused =
        promotion_.mode != config::PromotionMode::automatic || state_ == RouteState::pinned;
    return manual(now, refused, state_ == RouteState::promoted, RouteState::promoted,
                  std::move(reason), "manual promote");
}

ManualOutcome Controller::rollback(TimePoint now, std::string reason) {
    const bool refused =
        promotion_.mode != config::PromotionMode::automatic || state_ == RouteState::pinned;
    return manual(now, refused, !watched(state_), RouteState::rolled_back, std::move(reason),
                  "manual rollback");
}

ManualOutcome Controller::pin(TimePoint now, Side side, std::string reason) {
    return manual(now, is_pin_mode(promotion_.mode),
                  state_ == RouteState::pinned && pinned_side_ == side, RouteState::pinned,
                  std::move(reason), "manual pin", side);
}

ManualOutcome Controller::unpin(TimePoint now, std::string reason) {
    return manual(now, is_pin_mode(promotion_.mode), state_ != RouteState::pinned, unpinned_state(),
                  std::move(reason), "manual unpin");
}

// ---------------------------------------------------------------------------------------------
// Outputs

Side Controller::live_side() const {
    switch (state_) {
        case RouteState::shadowing:
        case RouteState::rolled_back:
            return Side::primary;
        case RouteState::ramping:
        case RouteState::promoted:
            return Side::candidate;
        case RouteState::pinned:
            return pinned_side_;
    }
    return Side::primary;
}

double Controller::candidate_share() const {
    switch (state_) {
        case RouteState::shadowing:
        case RouteState::rolled_back:
            return 0.0;
        case RouteState::ramping: {
            const auto& ramp = promotion_.ramp;
            const std::uint32_t percent = ramp[std::min(ramp_step_, ramp.size() - 1)];
            return std::min(percent, 100u) / 100.0;
        }
        case RouteState::promoted:
            return 1.0;
        case RouteState::pinned:
            return pinned_side_ == Side::candidate ? 1.0 : 0.0;
    }
    return 0.0;
}

double Controller::mirror_rate() const {
    return candidate_share() >= 1.0 ? promotion_.shadow_after_promotion : sample_rate_;
}

Side Controller::mirror_target(Side served) const {
    return served == Side::primary ? Side::candidate : Side::primary;
}

Evidence Controller::evidence() const {
    Evidence e;
    e.samples = static_cast<std::uint32_t>(window_.size());
    e.passes = window_passes_;
    e.fails = e.samples - e.passes;
    e.errors = recent_errors_;
    e.pass_rate = e.samples == 0 ? 0.0 : static_cast<double>(e.passes) / e.samples;
    e.wilson_lower = wilson_lower_bound(e.passes, e.samples);
    e.sprt_llr = flip_llr_;
    e.rollback_llr = rollback_llr_;
    e.live_requests = static_cast<std::uint32_t>(live_.size());
    e.live_errors = live_errors_;
    e.candidate_error_rate = live_.empty() ? 0.0 : static_cast<double>(live_errors_) / live_.size();
    return e;
}

Status Controller::status() const {
    Status s;
    s.state = state_;
    s.mode = promotion_.mode;
    s.live_side = live_side();
    s.candidate_share = candidate_share();
    s.ramp_step = ramp_step_;
    s.evidence = evidence();
    s.sprt_decision = flip_llr_ >= flip_accept()   ? SprtDecision::accepted
                      : flip_llr_ <= steps_.reject ? SprtDecision::rejected
                                                   : SprtDecision::undecided;
    s.sprt_accept = flip_accept();
    s.sprt_reject = steps_.reject;
    s.sprt_rejections = sprt_rejections_;
    s.flip_test = flip_test_;
    s.rollback_test = rollback_test_;
    s.rollback_accept = rollback_accept();
    s.window = promotion_.window;
    s.threshold = promotion_.threshold;
    s.rollback_threshold = promotion_.rollback_threshold;
    s.since = since_;
    s.cooldown_until = cooldown_until_;
    s.above_threshold_since = above_since_;
    s.last_verdict = last_verdict_;
    s.judge_error_run = error_run_;
    s.held_by_judge_errors = held_by_judge_errors();
    s.evidence_verdicts = evidence_verdicts_;
    s.total_verdicts = total_verdicts_;
    s.fingerprint = fingerprint_;
    return s;
}

std::vector<TransitionEvent> Controller::take_events() { return std::exchange(events_, {}); }

}  // namespace turnout::shadow
