#include "shadow/controller.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <numbers>
#include <stdexcept>
#include <utility>

#include "routing/json_input.hpp"

namespace turnout::shadow {

using routing::PromotionMode;

namespace {

// The loader allows threshold 1 and rollback_threshold 0; keeping every probability inside
// (0, 1) keeps every logarithm below finite (a single fail then simply weighs a lot).
double clamp_probability(double p) { return std::clamp(p, 1e-9, 1.0 - 1e-9); }

bool is_pin_mode(PromotionMode mode) {
    return mode == PromotionMode::pin_primary || mode == PromotionMode::pin_candidate;
}

// The states the controller watches for a rollback.
bool is_watched(RouteState state) {
    return state == RouteState::ramping || state == RouteState::promoted;
}

std::string or_default(std::string reason, std::string_view fallback) {
    return reason.empty() ? std::string(fallback) : reason;
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

}  // namespace

namespace {

// Names in enumerator order; the enums are contiguous from 0.
constexpr std::array<std::string_view, 5> kStateNames{"shadowing", "ramping", "promoted",
                                                      "rolled_back", "pinned"};
constexpr std::array<std::string_view, 2> kSideNames{"primary", "candidate"};
constexpr std::array<std::string_view, 3> kVerdictNames{"pass", "fail", "error"};
constexpr std::array<std::string_view, 3> kEventKindNames{"transition", "ramp_step",
                                                          "evidence_reset"};
constexpr std::array<std::string_view, 3> kTriggerNames{"automatic", "manual", "config"};
constexpr std::array<std::string_view, 3> kDecisionNames{"undecided", "accepted", "rejected"};
constexpr std::array<std::string_view, 4> kModeNames{"shadow", "auto", "pin-primary",
                                                     "pin-candidate"};

template <std::size_t N, typename E>
std::string_view name_of(const std::array<std::string_view, N>& names, E value) {
    const auto index = static_cast<std::size_t>(value);
    return index < N ? names[index] : std::string_view("unknown");
}

}  // namespace

std::string_view to_string(RouteState state) { return name_of(kStateNames, state); }
std::string_view to_string(Side side) { return name_of(kSideNames, side); }
std::string_view to_string(VerdictKind kind) { return name_of(kVerdictNames, kind); }
std::string_view to_string(EventKind kind) { return name_of(kEventKindNames, kind); }
std::string_view to_string(Trigger trigger) { return name_of(kTriggerNames, trigger); }
std::string_view to_string(SprtDecision decision) { return name_of(kDecisionNames, decision); }
std::string_view to_string(PromotionMode mode) { return name_of(kModeNames, mode); }

double wilson_lower_bound(std::uint32_t passes, std::uint32_t samples, double z) {
    if (samples == 0) return 0.0;
    const double n = samples;
    const double p = std::min<double>(passes, samples) / n;
    const double z2 = z * z;
    const double centre = p + z2 / (2.0 * n);
    const double margin = z * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n));
    return std::max(0.0, (centre - margin) / (1.0 + z2 / n));
}

double test_budget(double alpha, std::uint64_t k) {
    const double kk = static_cast<double>(std::max<std::uint64_t>(k, 1));
    return 6.0 * alpha / (std::numbers::pi * std::numbers::pi * kk * kk);
}

double accept_bound(double alpha, std::uint64_t k) { return -std::log(test_budget(alpha, k)); }

double budget_after(double alpha, std::uint64_t k) {
    // sum_{j > k} 1 / j^2: 32 terms, then sum_{j > M} 1 / j^2 by its asymptotic series
    // 1/M - 1/(2M^2) + 1/(6M^3) - 1/(30M^5) + ..., cut after a positive term: an upper bound,
    // within 1/(30 M^5) of the exact sum.
    constexpr std::uint64_t kTerms = 32;
    double tail = 0.0;
    for (std::uint64_t j = k + kTerms; j > k; --j) {
        const double jj = static_cast<double>(j);
        tail += 1.0 / (jj * jj);
    }
    const double m = static_cast<double>(k + kTerms);
    tail += 1.0 / m - 1.0 / (2.0 * m * m) + 1.0 / (6.0 * m * m * m);
    return 6.0 * alpha / (std::numbers::pi * std::numbers::pi) * tail;
}

std::string guarantee(const routing::PromotionConfig& promotion) {
    const double alpha = clamp_probability(1.0 - promotion.confidence);
    char text[160];
    std::snprintf(text, sizeof text,
                  "false switch at most %.3g%% at any horizon (pass rate <= %.3g), false "
                  "rollback at most %.3g%% (>= %.3g)",
                  100.0 * alpha, promotion.rollback_threshold, 100.0 * alpha, promotion.threshold);
    return text;
}

// ---------------------------------------------------------------------------------------------
// Configuration

Controller::Controller(const routing::RouteConfig& route, std::string fingerprint, TimePoint now)
    : fingerprint_(std::move(fingerprint)), since_(now), step_started_(now), stall_anchor_(now) {
    apply_config(route);
    if (is_pin_mode(promotion_.mode)) {
        state_ = RouteState::pinned;
        pinned_side_ =
            promotion_.mode == PromotionMode::pin_primary ? Side::primary : Side::candidate;
    }
}

Controller::SprtSteps Controller::sprt_steps(const routing::PromotionConfig& promotion) {
    const double h1 = clamp_probability(promotion.threshold);
    const double h0 = clamp_probability(promotion.rollback_threshold);
    const double alpha = clamp_probability(1.0 - promotion.confidence);
    const double beta = alpha;
    SprtSteps steps;
    steps.pass = std::log(h1 / h0);
    steps.fail = std::log((1.0 - h1) / (1.0 - h0));
    steps.alpha = alpha;
    // Ville's bound, not Wald's approximation ln(beta / (1 - alpha)): under H1 a test rejects
    // (and the next one starts) with probability at most beta.
    steps.reject = std::log(beta);
    return steps;
}

void Controller::apply_config(const routing::RouteConfig& route) {
    promotion_ = route.promotion;
    if (promotion_.ramp.empty()) promotion_.ramp = {100};
    promotion_.window = std::max<std::uint32_t>(promotion_.window, 1);
    sample_rate_ = route.shadow.sample_rate;
    steps_ = sprt_steps(promotion_);
    trim(window_, promotion_.window, window_passes_);
    trim(recent_, promotion_.window, recent_errors_);
}

void Controller::reconfigure(TimePoint now, const routing::RouteConfig& route,
                             std::string fingerprint) {
    const PromotionMode old_mode = promotion_.mode;
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

void Controller::apply_mode(TimePoint now, PromotionMode old_mode) {
    const std::string reason = "mode " + std::string(to_string(promotion_.mode));
    const bool pinned_by_mode = state_ == RouteState::pinned && is_pin_mode(old_mode);
    switch (promotion_.mode) {
        case PromotionMode::pin_primary:
        case PromotionMode::pin_candidate: {
            const Side side =
                promotion_.mode == PromotionMode::pin_primary ? Side::primary : Side::candidate;
            if (state_ != RouteState::pinned || pinned_side_ != side) {
                transition(now, RouteState::pinned, 0, Trigger::config, reason, side);
            }
            return;
        }
        case PromotionMode::shadow:
            // A manual pin outlives the mode change; anything else becomes judge-only.
            if (state_ == RouteState::pinned && !pinned_by_mode) return;
            if (state_ != RouteState::shadowing) {
                transition(now, RouteState::shadowing, 0, Trigger::config, reason);
            }
            return;
        case PromotionMode::automatic:
            if (pinned_by_mode) transition(now, unpinned_state(), 0, Trigger::config, reason);
            return;
    }
}

void Controller::apply_ramp_change(TimePoint now, double old_share) {
    const auto& ramp = promotion_.ramp;
    if (ramp_step_ >= ramp.size() || ramp[ramp_step_] >= 100) {
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
    if (is_watched(state_)) {
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
    if (promotion_.mode != PromotionMode::automatic) return;
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
    if (promotion_.ramp.front() >= 100) {
        transition(now, RouteState::promoted, 0, Trigger::automatic, "sprt accepted");
    } else {
        transition(now, RouteState::ramping, 0, Trigger::automatic, "sprt accepted");
    }
    return true;
}

bool Controller::try_advance_ramp(TimePoint now) {
    if (held_by_judge_errors()) return false;
    if (now - step_started_ < promotion_.step || step_samples_ < promotion_.min_samples) {
        return false;
    }
    const auto& ramp = promotion_.ramp;
    const std::size_t next = ramp_step_ + 1;
    if (next >= ramp.size() || ramp[next] >= 100) {
        transition(now, RouteState::promoted, 0, Trigger::automatic, "ramp step");
    } else {
        transition(now, RouteState::ramping, next, Trigger::automatic, "ramp step");
    }
    return true;
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
    const routing::Duration grace =
        promotion_.hold > routing::Duration::zero() ? promotion_.hold : promotion_.step;
    if (grace <= routing::Duration::zero()) return false;
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
    if (is_watched(to) && !is_watched(from)) watch_candidate(now);
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
    if (is_watched(state_)) ++rollback_test_;
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
    if (promotion_.mode == PromotionMode::shadow || pinned_side_ == Side::primary) {
        return RouteState::shadowing;
    }
    return RouteState::promoted;
}

void Controller::push_event(TimePoint now, EventKind kind, Trigger trigger, RouteState from,
                            Side from_side, std::string reason, const Evidence& evidence) {
    TransitionEvent event;
    event.time = now;
    event.kind = kind;
    event.trigger = trigger;
    event.from = from;
    event.to = state_;
    event.from_side = from_side;
    event.to_side = live_side();
    event.candidate_share = candidate_share();
    event.ramp_step = ramp_step_;
    event.reason = std::move(reason);
    event.evidence = evidence;
    events_.push_back(std::move(event));
}

// ---------------------------------------------------------------------------------------------
// Manual commands

ManualOutcome Controller::promote(TimePoint now, std::string reason) {
    if (promotion_.mode != PromotionMode::automatic || state_ == RouteState::pinned) {
        return ManualOutcome::refused;
    }
    if (state_ == RouteState::promoted) return ManualOutcome::unchanged;
    transition(now, RouteState::promoted, 0, Trigger::manual,
               or_default(std::move(reason), "manual promote"));
    return ManualOutcome::applied;
}

ManualOutcome Controller::rollback(TimePoint now, std::string reason) {
    if (promotion_.mode != PromotionMode::automatic || state_ == RouteState::pinned) {
        return ManualOutcome::refused;
    }
    if (!is_watched(state_)) return ManualOutcome::unchanged;
    transition(now, RouteState::rolled_back, 0, Trigger::manual,
               or_default(std::move(reason), "manual rollback"));
    return ManualOutcome::applied;
}

ManualOutcome Controller::pin(TimePoint now, Side side, std::string reason) {
    if (is_pin_mode(promotion_.mode)) return ManualOutcome::refused;
    if (state_ == RouteState::pinned && pinned_side_ == side) return ManualOutcome::unchanged;
    transition(now, RouteState::pinned, 0, Trigger::manual,
               or_default(std::move(reason), "manual pin"), side);
    return ManualOutcome::applied;
}

ManualOutcome Controller::unpin(TimePoint now, std::string reason) {
    if (is_pin_mode(promotion_.mode)) return ManualOutcome::refused;
    if (state_ != RouteState::pinned) return ManualOutcome::unchanged;
    transition(now, unpinned_state(), 0, Trigger::manual,
               or_default(std::move(reason), "manual unpin"));
    return ManualOutcome::applied;
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

// ---------------------------------------------------------------------------------------------
// Persistence

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

std::int64_t to_ns(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TimePoint from_ns(std::int64_t ns) {
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}


void write_key(JsonWriter& w, std::string_view key) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void write_string(JsonWriter& w, std::string_view key, std::string_view value) {
    write_key(w, key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void write_uint(JsonWriter& w, std::string_view key, std::uint64_t value) {
    write_key(w, key);
    w.Uint64(value);
}

void write_double(JsonWriter& w, std::string_view key, double value) {
    write_key(w, key);
    w.Double(value);
}

void write_time(JsonWriter& w, std::string_view key, std::optional<TimePoint> time) {
    write_key(w, key);
    if (time) {
        w.Int64(to_ns(*time));
    } else {
        w.Null();
    }
}

void write_bits(JsonWriter& w, std::string_view key, const std::deque<bool>& bits) {
    std::string text;
    for (const bool bit : bits) text.push_back(bit ? '1' : '0');
    write_string(w, key, text);
}

void write_evidence(JsonWriter& w, const Evidence& e) {
    w.StartObject();
    write_uint(w, "samples", e.samples);
    write_uint(w, "passes", e.passes);
    write_uint(w, "fails", e.fails);
    write_uint(w, "errors", e.errors);
    write_double(w, "pass_rate", e.pass_rate);
    write_double(w, "wilson_lower", e.wilson_lower);
    write_double(w, "sprt_llr", e.sprt_llr);
    write_double(w, "rollback_llr", e.rollback_llr);
    write_uint(w, "live_requests", e.live_requests);
    write_uint(w, "live_errors", e.live_errors);
    write_double(w, "candidate_error_rate", e.candidate_error_rate);
    w.EndObject();
}

void write_event(JsonWriter& w, const TransitionEvent& e) {
    w.StartObject();
    write_string(w, "time", rfc3339(e.time));
    write_time(w, "time_unix_ns", e.time);
    write_string(w, "kind", to_string(e.kind));
    write_string(w, "trigger", to_string(e.trigger));
    write_string(w, "from", to_string(e.from));
    write_string(w, "to", to_string(e.to));
    write_string(w, "from_side", to_string(e.from_side));
    write_string(w, "to_side", to_string(e.to_side));
    write_double(w, "candidate_share", e.candidate_share);
    write_uint(w, "ramp_step", e.ramp_step);
    write_string(w, "reason", e.reason);
    write_key(w, "evidence");
    write_evidence(w, e.evidence);
    w.EndObject();
}

[[noreturn]] void bad_state(std::string_view field) {
    throw std::invalid_argument("controller state: missing or invalid '" + std::string(field) +
                                "'");
}

/// Typed, checked access to one JSON object of a saved state.
class Fields {
  public:
    Fields(const rapidjson::Value& value, std::string_view what) : value_(value) {
        if (!value.IsObject()) bad_state(what);
    }

    bool has(const char* name) const { return value_.HasMember(name); }

    const rapidjson::Value& at(const char* name) const {
        const auto it = value_.FindMember(name);
        if (it == value_.MemberEnd()) bad_state(name);
        return it->value;
    }
    std::uint64_t u64(const char* name) const {
        const auto& v = at(name);
        if (!v.IsUint64()) bad_state(name);
        return v.GetUint64();
    }
    std::uint32_t u32(const char* name) const {
        const auto& v = at(name);
        if (!v.IsUint()) bad_state(name);
        return v.GetUint();
    }
    double number(const char* name) const {
        const auto& v = at(name);
        if (!v.IsNumber()) bad_state(name);
        return v.GetDouble();
    }
    std::string string(const char* name) const {
        const auto& v = at(name);
        if (!v.IsString()) bad_state(name);
        return std::string(v.GetString(), v.GetStringLength());
    }
    std::optional<TimePoint> optional_time(const char* name) const {
        const auto& v = at(name);
        if (v.IsNull()) return std::nullopt;
        if (!v.IsInt64()) bad_state(name);
        return from_ns(v.GetInt64());
    }
    TimePoint time(const char* name) const {
        const auto t = optional_time(name);
        if (!t) bad_state(name);
        return *t;
    }
    template <typename E, std::size_t N>
    E choice(const char* name, const std::array<E, N>& values) const {
        const std::string text = string(name);
        for (const E value : values) {
            if (to_string(value) == text) return value;
        }
        bad_state(name);
    }
    /// A string of '0' and '1' into `bits`; returns the number of ones.
    std::uint32_t bits(const char* name, std::deque<bool>& bits) const {
        std::uint32_t ones = 0;
        bits.clear();
        for (const char c : string(name)) {
            if (c != '0' && c != '1') bad_state(name);
            bits.push_back(c == '1');
            ones += c == '1';
        }
        return ones;
    }

  private:
    const rapidjson::Value& value_;
};

constexpr std::array kStates{RouteState::shadowing, RouteState::ramping, RouteState::promoted,
                             RouteState::rolled_back, RouteState::pinned};
constexpr std::array kSides{Side::primary, Side::candidate};
constexpr std::array kKinds{EventKind::transition, EventKind::ramp_step, EventKind::evidence_reset};
constexpr std::array kTriggers{Trigger::automatic, Trigger::manual, Trigger::config};
constexpr std::array kModes{PromotionMode::shadow, PromotionMode::automatic,
                            PromotionMode::pin_primary, PromotionMode::pin_candidate};

Evidence read_evidence(const Fields& f) {
    Evidence e;
    e.samples = f.u32("samples");
    e.passes = f.u32("passes");
    e.fails = f.u32("fails");
    e.errors = f.u32("errors");
    e.pass_rate = f.number("pass_rate");
    e.wilson_lower = f.number("wilson_lower");
    e.sprt_llr = f.number("sprt_llr");
    e.rollback_llr = f.number("rollback_llr");
    e.live_requests = f.u32("live_requests");
    e.live_errors = f.u32("live_errors");
    e.candidate_error_rate = f.number("candidate_error_rate");
    return e;
}

TransitionEvent read_event(const Fields& f) {
    TransitionEvent e;
    e.time = from_ns([&] {
        const auto& v = f.at("time_unix_ns");
        if (!v.IsInt64()) bad_state("time_unix_ns");
        return v.GetInt64();
    }());
    e.kind = f.choice("kind", kKinds);
    e.trigger = f.choice("trigger", kTriggers);
    e.from = f.choice("from", kStates);
    e.to = f.choice("to", kStates);
    e.from_side = f.choice("from_side", kSides);
    e.to_side = f.choice("to_side", kSides);
    e.candidate_share = f.number("candidate_share");
    e.ramp_step = f.u64("ramp_step");
    e.reason = f.string("reason");
    e.evidence = read_evidence(Fields(f.at("evidence"), "evidence"));
    return e;
}

}  // namespace

/// Reads and writes a Controller's private state; the one place that knows the JSON layout.
struct ControllerJson {
    static void write_config(JsonWriter& w, const routing::PromotionConfig& p) {
        write_key(w, "config");
        w.StartObject();
        write_string(w, "mode", to_string(p.mode));
        write_double(w, "threshold", p.threshold);
        write_double(w, "rollback_threshold", p.rollback_threshold);
        write_double(w, "confidence", p.confidence);
        write_key(w, "ramp");
        w.StartArray();
        for (const std::uint32_t step : p.ramp) w.Uint(step);
        w.EndArray();
        w.EndObject();
    }

    static void read_config(const Fields& f, routing::PromotionConfig& p) {
        p.mode = f.choice("mode", kModes);
        p.threshold = f.number("threshold");
        p.rollback_threshold = f.number("rollback_threshold");
        p.confidence = f.number("confidence");
        const auto& ramp = f.at("ramp");
        if (!ramp.IsArray() || ramp.Empty()) bad_state("ramp");
        p.ramp.clear();
        for (const auto& step : ramp.GetArray()) {
            if (!step.IsUint()) bad_state("ramp");
            p.ramp.push_back(step.GetUint());
        }
    }

    static void write_serving(JsonWriter& w, const Controller& c) {
        write_string(w, "state", to_string(c.state_));
        write_string(w, "pinned_side", to_string(c.pinned_side_));
        write_uint(w, "ramp_step", c.ramp_step_);
        write_time(w, "since", c.since_);
        write_time(w, "cooldown_until", c.cooldown_until_);
    }

    static void read_serving(const Fields& f, Controller& c) {
        c.state_ = f.choice("state", kStates);
        c.pinned_side_ = f.choice("pinned_side", kSides);
        c.ramp_step_ = f.u64("ramp_step");
        if (c.ramp_step_ >= c.promotion_.ramp.size()) bad_state("ramp_step");
        c.since_ = f.time("since");
        c.cooldown_until_ = f.optional_time("cooldown_until");
    }

    static void write_evidence_state(JsonWriter& w, const Controller& c) {
        write_bits(w, "window", c.window_);
        write_bits(w, "recent_errors", c.recent_);
        write_double(w, "flip_llr", c.flip_llr_);
        write_uint(w, "flip_test", c.flip_test_);
        write_uint(w, "sprt_rejections", c.sprt_rejections_);
        write_time(w, "above_since", c.above_since_);
        write_uint(w, "error_run", c.error_run_);
        write_uint(w, "evidence_verdicts", c.evidence_verdicts_);
        write_uint(w, "total_verdicts", c.total_verdicts_);
        write_time(w, "last_verdict", c.last_verdict_);
    }

    static void read_evidence_state(const Fields& f, Controller& c) {
        c.window_passes_ = f.bits("window", c.window_);
        c.recent_errors_ = f.bits("recent_errors", c.recent_);
        c.flip_llr_ = f.number("flip_llr");
        c.sprt_rejections_ = f.u32("sprt_rejections");
        c.above_since_ = f.optional_time("above_since");
        c.error_run_ = f.u32("error_run");
        c.evidence_verdicts_ = f.u64("evidence_verdicts");
        c.total_verdicts_ = f.u64("total_verdicts");
        c.last_verdict_ = f.optional_time("last_verdict");
    }

    static void write_watch(JsonWriter& w, const Controller& c) {
        write_double(w, "rollback_llr", c.rollback_llr_);
        write_uint(w, "rollback_test", c.rollback_test_);
        write_bits(w, "live_errors", c.live_);
        write_time(w, "step_started", c.step_started_);
        write_uint(w, "step_samples", c.step_samples_);
        write_time(w, "stall_anchor", c.stall_anchor_);
        write_double(w, "mirrors_expected", c.mirrors_expected_);
    }

    static void read_watch(const Fields& f, Controller& c) {
        c.rollback_llr_ = f.number("rollback_llr");
        c.live_errors_ = f.bits("live_errors", c.live_);
        c.step_started_ = f.time("step_started");
        c.step_samples_ = f.u32("step_samples");
        c.stall_anchor_ = f.time("stall_anchor");
        c.mirrors_expected_ = f.number("mirrors_expected");
    }

    /// The spent budget. Absent (a state saved before it existed): the most tests the verdicts
    /// seen could have run, never fewer than ran (see from_json).
    static void read_test_counters(const Fields& f, Controller& c) {
        if (f.has("flip_test")) {
            c.flip_test_ = f.u64("flip_test");
            if (c.flip_test_ == 0) bad_state("flip_test");
        } else {
            c.flip_test_ = 1 + c.total_verdicts_ / fewest_to_reject(c.steps_.reject, c.steps_.fail);
        }
        if (f.has("rollback_test")) {
            c.rollback_test_ = f.u64("rollback_test");
            if (c.rollback_test_ == 0 && is_watched(c.state_)) bad_state("rollback_test");
        } else {
            c.rollback_test_ =
                (is_watched(c.state_) ? 1 : 0) +
                c.total_verdicts_ / fewest_to_reject(c.steps_.reject, -c.steps_.pass);
        }
    }

    /// Verdicts of the given (negative) increment that take a test from 0 to `reject`.
    static std::uint64_t fewest_to_reject(double reject, double step) {
        if (!(step < 0.0)) return 1;
        const double n = std::ceil(reject / step);
        return n >= 1.0 && n < 1e12 ? static_cast<std::uint64_t>(n) : 1;
    }

    static void read_events(const Fields& f, Controller& c) {
        const auto& events = f.at("events");
        if (!events.IsArray()) bad_state("events");
        for (const auto& event : events.GetArray()) {
            c.events_.push_back(read_event(Fields(event, "events")));
        }
    }
};

std::string Controller::to_json() const {
    rapidjson::StringBuffer buffer;
    JsonWriter w(buffer);
    w.StartObject();
    write_uint(w, "version", 1);
    write_string(w, "fingerprint", fingerprint_);
    ControllerJson::write_config(w, promotion_);
    ControllerJson::write_serving(w, *this);
    ControllerJson::write_evidence_state(w, *this);
    ControllerJson::write_watch(w, *this);
    write_key(w, "events");
    w.StartArray();
    for (const auto& event : events_) write_event(w, event);
    w.EndArray();
    w.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize());
}

Controller Controller::from_json(std::string_view json, const routing::RouteConfig& route,
                                 std::string fingerprint, TimePoint now,
                                 const VerdictLogTail& log) {
    rapidjson::Document doc;
    // Full precision: the statistics must come back bit for bit, or a restart could decide
    // differently from an uninterrupted run.
    constexpr routing::JsonInputOptions kOptions{.full_precision = true};
    if (!routing::parse_json_input(json, doc, kOptions)) {
        throw std::invalid_argument("controller state: not valid JSON");
    }
    const Fields root(doc, "state");
    if (root.u32("version") != 1) bad_state("version");
    routing::RouteConfig saved = route;
    ControllerJson::read_config(Fields(root.at("config"), "config"), saved.promotion);
    Controller c(saved, root.string("fingerprint"), root.time("since"));
    ControllerJson::read_serving(root, c);
    ControllerJson::read_evidence_state(root, c);
    ControllerJson::read_watch(root, c);
    ControllerJson::read_test_counters(root, c);
    ControllerJson::read_events(root, c);
    // Before reconfigure: the unsaved verdicts were judged under the saved configuration.
    c.replay_unsaved(log);
    c.reconfigure(now, route, std::move(fingerprint));
    return c;
}

void Controller::replay_unsaved(const VerdictLogTail& log) {
    if (!log) return;
    const std::uint64_t saved = total_verdicts_;
    // The log's times have millisecond precision.
    const TimePoint oldest = std::chrono::floor<std::chrono::milliseconds>(since_);
    std::vector<LoggedVerdict> run;  // newest first
    // The unsaved run is short (the state is saved within a second of a verdict): ask for a
    // few lines, and for more only while every line read still belongs to the run.
    for (std::size_t limit = 64;; limit *= 4) {
        const std::vector<std::string> lines = log(limit);
        run.clear();
        bool ended = false;
        for (const std::string& line : lines) {
            const auto verdict = parse_logged_verdict(line);
            if (!verdict || verdict->seq <= saved || verdict->time < oldest ||
                (!run.empty() && verdict->seq + 1 != run.back().seq)) {
                ended = true;
                break;
            }
            run.push_back(*verdict);
        }
        if (ended || lines.size() < limit) break;
    }
    for (auto it = run.rbegin(); it != run.rend(); ++it) {
        // Never back in time: the log keeps milliseconds, the state nanoseconds.
        const TimePoint at = std::max(it->time, last_verdict_.value_or(it->time));
        record_verdict(at, it->kind);
    }
}

std::optional<LoggedVerdict> parse_logged_verdict(std::string_view line) {
    rapidjson::Document doc;
    if (!routing::parse_json_input(line, doc) || !doc.IsObject()) return std::nullopt;
    const auto seq = doc.FindMember("seq");
    const auto time = doc.FindMember("time");
    const auto verdict = doc.FindMember("verdict");
    if (seq == doc.MemberEnd() || !seq->value.IsUint64() || seq->value.GetUint64() == 0 ||
        time == doc.MemberEnd() || !time->value.IsString() || verdict == doc.MemberEnd() ||
        !verdict->value.IsString()) {
        return std::nullopt;
    }
    LoggedVerdict logged;
    logged.seq = seq->value.GetUint64();
    const std::string_view kind(verdict->value.GetString(), verdict->value.GetStringLength());
    const auto found = std::find(kVerdictNames.begin(), kVerdictNames.end(), kind);
    if (found == kVerdictNames.end()) return std::nullopt;
    logged.kind = static_cast<VerdictKind>(found - kVerdictNames.begin());
    const auto parsed_time = parse_rfc3339(time->value.GetString());
    if (!parsed_time) return std::nullopt;
    logged.time = *parsed_time;
    return logged;
}

std::optional<TimePoint> parse_rfc3339(const char* text) {
    // Exactly what rfc3339() writes: 2026-11-28T01:02:03.456Z.
    std::tm tm{};
    int millis = 0;
    int consumed = 0;
    if (std::sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &consumed) != 7 ||
        consumed != 24 || text[consumed] != '\0') {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const std::time_t seconds = timegm(&tm);
    if (seconds == static_cast<std::time_t>(-1)) return std::nullopt;
    return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
        std::chrono::seconds(seconds) + std::chrono::milliseconds(millis)));
}

std::string rfc3339(TimePoint t) {
    const auto ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch());
    const auto seconds = std::chrono::floor<std::chrono::seconds>(ms);
    const std::time_t tt = static_cast<std::time_t>(seconds.count());
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char text[64];
    const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>((ms - seconds).count()));
    return text;
}

std::string to_json(const TransitionEvent& event) {
    rapidjson::StringBuffer buffer;
    JsonWriter w(buffer);
    write_event(w, event);
    return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace turnout::shadow
