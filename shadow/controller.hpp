#pragma once
/// The per-route promotion controller (CONTRACT.md "Route states and the decision"): it turns
/// judge verdicts, live results and the passing of time into the route's state (shadowing,
/// ramping, promoted, rolled_back, pinned), the candidate's share of live traffic and the
/// mirroring policy, and queues one event per change with the numbers behind it.
///
/// Plain C++: no sockets, no threads, no clock of its own. Every input carries `now`, so tests
/// drive a fake clock and a restart replays the same decisions. Not thread-safe: the owner
/// serialises all calls (one strand), publishes candidate_share() in routing::RouteStates and
/// drains take_events() after each call.
///
/// The decision, where the contract leaves room:
/// - Flip (mode `auto`, state shadowing or rolled_back after its cooldown), when all hold:
///   at least `min_samples` pass/fail verdicts in the window; the window's pass rate
///   (passes / (passes + fails) over the last `window` pass/fail verdicts) >= `threshold`
///   continuously for `hold`, the hold clock starting at the first verdict where the rate
///   holds with at least `min_samples` samples; and the flip SPRT at or above its acceptance
///   bound. The flip goes to the first ramp step, or straight to promoted when it is 100.
/// - The flip test is a sequential probability ratio test of H1 p = threshold against
///   H0 p = rollback_threshold, with alpha = beta = 1 - confidence: a pass adds
///   ln(threshold / rollback_threshold), a fail ln((1 - threshold) / (1 - rollback_threshold)).
///   It rejects at ln(beta) and then restarts at 0 as the next test; the k-th test (k = 1, 2,
///   ...) accepts at ln(1 / alpha_k) with alpha_k = 6 alpha / (pi^2 k^2), the k-th share of an
///   error budget that sums to alpha. Under H0 the likelihood ratio is a martingale, so by
///   Ville's inequality the k-th test ever accepts with probability at most alpha_k, and the
///   route flips falsely with probability at most alpha however long it runs (a candidate
///   worse than rollback_threshold less). At 0.90 / 0.85 / 0.95: 62 straight passes to
///   accept from zero (k = 1), 8 straight fails to reject, 86 passes for the test after the
///   first rejection; a candidate at 0.95 flips after 104 verdicts on average, one at 0.97
///   after 82. The test counter k (the spent budget) is durable and starts again at 1 only
///   when the evidence does (a changed fingerprint); every other restart (a rejection, the
///   restart at a rollback, changed test parameters) takes the next k. Floored or restarted
///   tests without a spent budget do not keep the error rate: at a true pass rate of 0.85
///   the earlier floor flipped 11.8% of routes within 50,000 verdicts, a plain restart 18%
///   within 1,000.
/// - The rollback test is the same with the hypotheses swapped, from the flip on (each watch of
///   a live candidate is the next rollback test): 9 straight fails roll back (k = 1), 53
///   straight passes reject; a candidate at `threshold` is rolled back by it with
///   probability at most alpha at any horizon.
/// - Ramping: each step lasts at least `step` and `min_samples` new pass/fail verdicts; the
///   step after the last below 100 is promoted.
/// - Rollback (ramping or promoted -> rolled_back, mode `auto`), when any holds: the rollback
///   test accepts "pass rate <= rollback_threshold" (9 straight fails at the defaults, k = 1;
///   the bound grows with k like the flip test's); the candidate's live
///   error rate exceeds 2% over at least 50 of its last 200 live requests; or verdicts
///   stopped: no verdict of any kind for longer than `hold` (or `step` when hold is 0s; never
///   when both are 0s) since the later of the last verdict and the flip, while live traffic
///   went on that should have produced at least 5 mirrored requests (sum of mirror_rate() over
///   the live requests in that time). So a quiet night without traffic rolls nothing back.
/// - A rollback sets cooldown_until = now + cooldown and restarts the flip evidence (window,
///   flip SPRT, hold clock, evidence counters); rolled_back stays the state until the next flip.
/// - A judge-error run (the kJudgeErrorHoldRun or more most recent verdicts all errors) holds
///   the route: no flip, ramp step, sequential or verdicts-stopped rollback while it lasts.
///   The live error-rate rollback still fires: that evidence does not come from the judge, and
///   users are being served the errors. Manual commands are not held.
/// - Mode `shadow`: the state is shadowing (or a manual pin); nothing automatic ever happens;
///   manual promote/rollback are refused, pin/unpin work. Mode `auto`: everything; manual
///   promote/rollback are refused while manually pinned ("pins win"). Modes `pin-primary` and
///   `pin-candidate`: pinned to that side; every manual command is refused (change the config).
/// - Unpinning (manually, or by a mode change away from a pin) keeps the serving side:
///   pinned primary -> shadowing, pinned candidate -> promoted (rollback watch restarted at the
///   unpin); in mode `shadow` always -> shadowing. A mode change to `shadow` moves ramping,
///   promoted and rolled_back to shadowing.
/// - Judging goes on in every state, pinned included, so evidence is ready when a pin ends.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "shadow/sequential_test.hpp"

namespace turnout::shadow {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

/// Route states as the contract names them (label values of turnout_route_state).
enum class RouteState { shadowing, ramping, promoted, rolled_back, pinned };
enum class Side { primary, candidate };
/// A judged pair: pass / fail by score, or error (no parsable verdict, judge timeout or error).
/// A candidate that errored or timed out in the shadow is a fail, not an error.
enum class VerdictKind { pass, fail, error };
/// transition: the state or the pinned side changed. ramp_step: ramping -> next ramping step.
/// evidence_reset: no change of state; the evidence was started afresh.
enum class EventKind { transition, ramp_step, evidence_reset };
/// Who caused an event: the controller's own decision, an admin command, or a config reload.
enum class Trigger { automatic, manual, config };
/// Where the flip SPRT stands: at/above its acceptance bound, at/below its rejection bound.
enum class SprtDecision { undecided, accepted, rejected };
enum class ManualOutcome {
    applied,    ///< the state changed; an event is queued
    unchanged,  ///< already there (e.g. promote while promoted)
    refused,    ///< the mode or a pin forbids it (see the rules at the top)
};

std::string_view to_string(RouteState state);
std::string_view to_string(Side side);
std::string_view to_string(VerdictKind kind);
std::string_view to_string(EventKind kind);
std::string_view to_string(Trigger trigger);
std::string_view to_string(SprtDecision decision);
/// "shadow", "auto", "pin-primary", "pin-candidate", as in the config file.
std::string_view to_string(config::PromotionMode mode);

/// Judge error run length that holds the route.
inline constexpr std::uint32_t kJudgeErrorHoldRun = 5;
/// Live candidate requests kept for the error rate, the least that count, and the limit.
inline constexpr std::size_t kLiveWindow = 200;
inline constexpr std::size_t kLiveMinRequests = 50;
inline constexpr double kLiveMaxErrorRate = 0.02;  ///< roll back when strictly above
/// Expected mirrored requests without a verdict before "verdicts stopped" may fire.
inline constexpr double kStallMinExpectedMirrors = 5.0;

/// The evidence at one moment: the numbers shown in /admin/routes and attached to events.
struct Evidence {
    std::uint32_t samples = 0;  ///< pass + fail verdicts in the window
    std::uint32_t passes = 0;
    std::uint32_t fails = 0;
    std::uint32_t errors = 0;         ///< judge errors among the last `window` verdicts of any kind
    double pass_rate = 0.0;           ///< passes / samples, 0 without samples
    double wilson_lower = 0.0;        ///< 95% Wilson lower bound of pass_rate
    double sprt_llr = 0.0;            ///< the flip test's log-likelihood ratio
    double rollback_llr = 0.0;        ///< the rollback test's (0 unless the candidate is live)
    std::uint32_t live_requests = 0;  ///< candidate live requests in the error window
    std::uint32_t live_errors = 0;
    double candidate_error_rate = 0.0;  ///< live_errors / live_requests, 0 without requests

    bool operator==(const Evidence&) const = default;
};

/// One change, for the caller to log, count (turnout_route_flips_total counts the events whose
/// to_side differs from from_side) and store durably.
struct TransitionEvent {
    TimePoint time;
    EventKind kind = EventKind::transition;
    Trigger trigger = Trigger::automatic;
    RouteState from = RouteState::shadowing;
    RouteState to = RouteState::shadowing;
    Side from_side = Side::primary;
    Side to_side = Side::primary;
    double candidate_share = 0.0;  ///< after the event
    std::size_t ramp_step = 0;     ///< after the event; meaningful while ramping
    /// Automatic: "sprt accepted", "ramp step", "sequential rollback", "candidate error rate",
    /// "verdicts stopped", "evidence fingerprint changed", "test parameters changed";
    /// config: "mode <mode>"; manual: as given ("manual <command>" when given empty).
    std::string reason;
    Evidence evidence;  ///< just before any evidence reset the event causes

    bool operator==(const TransitionEvent&) const = default;
};

/// A snapshot of a controller for /admin/routes, metrics and tests.
struct Status {
    RouteState state = RouteState::shadowing;
    config::PromotionMode mode = config::PromotionMode::shadow;
    /// primary for shadowing, rolled_back and pinned primary; candidate for ramping (even at a
    /// small share), promoted and pinned candidate.
    Side live_side = Side::primary;
    double candidate_share = 0.0;
    std::size_t ramp_step = 0;  ///< index into `ramp`; meaningful while ramping
    Evidence evidence;
    SprtDecision sprt_decision = SprtDecision::undecided;
    double sprt_accept = 0.0;           ///< the running flip test's bound: accept_bound(alpha, k)
    double sprt_reject = 0.0;           ///< ln(beta)
    std::uint32_t sprt_rejections = 0;  ///< flip test rejections since evidence start
    std::uint64_t flip_test = 1;        ///< k of the running flip test (the spent budget)
    /// k of the current (or, while the primary serves, the last) rollback test; 0 before any.
    std::uint64_t rollback_test = 0;
    double rollback_accept = 0.0;  ///< accept_bound(alpha, max(rollback_test, 1))
    std::uint32_t window = 0;
    double threshold = 0.0;
    double rollback_threshold = 0.0;
    TimePoint since;                                 ///< the last transition (or construction)
    std::optional<TimePoint> cooldown_until;         ///< set by a rollback
    std::optional<TimePoint> above_threshold_since;  ///< the hold clock
    std::optional<TimePoint> last_verdict;
    std::uint32_t judge_error_run = 0;    ///< most recent consecutive judge errors
    bool held_by_judge_errors = false;    ///< judge_error_run >= kJudgeErrorHoldRun
    std::uint64_t evidence_verdicts = 0;  ///< verdicts of any kind since the evidence started
    std::uint64_t total_verdicts = 0;     ///< verdicts of any kind since the controller began
    std::string fingerprint;

    bool operator==(const Status&) const = default;
};

/// One verdict as a line of the durable verdict log holds it ("seq", "time", "verdict").
struct LoggedVerdict {
    std::uint64_t seq = 0;  ///< the controller's total_verdicts() once it was recorded: 1, 2, ...
    TimePoint time;         ///< millisecond precision (the line's RFC 3339 "time")
    VerdictKind kind = VerdictKind::error;
};

/// The verdict log line's fields; nullopt when `line` is no such line (lines written before
/// "seq" existed included).
std::optional<LoggedVerdict> parse_logged_verdict(std::string_view line);

/// The newest `limit` verdict log lines of one route, newest first
/// (StateStore::latest_verdicts): how a restore finds verdicts its saved state lacks.
using VerdictLogTail = std::function<std::vector<std::string>(std::size_t limit)>;

/// One route's controller. Copyable and movable; a plain value.
class Controller {
  public:
    /// Starts shadowing (pinned in the pin modes) with empty evidence. `fingerprint` identifies
    /// the evidence: a hash of the candidate's provider and model, the judge's provider and
    /// model, the prompt template's hash and pass_score.
    Controller(const config::RouteConfig& route, std::string fingerprint, TimePoint now);

    /// A judged pair. Updates the window, both sequential tests and the hold clock, then
    /// decides.
    void record_verdict(TimePoint now, VerdictKind verdict);

    /// One live request's outcome. Candidate-served ones feed the error rate while the
    /// candidate is live; every one counts toward "verdicts stopped" (traffic went on).
    void record_live_result(TimePoint now, bool served_by_candidate, bool error);

    /// Time passing alone: completes a hold, a ramp step's time, a cooldown, or a stall. Call
    /// it periodically (e.g. once a second); every other input does the same first.
    void tick(TimePoint now);

    /// A config reload. A different `fingerprint` starts the evidence afresh (state kept,
    /// event evidence_reset); changed test hypotheses (threshold, rollback_threshold,
    /// confidence) restart both sequential statistics; a changed mode applies at once; a
    /// smaller window drops the oldest verdicts.
    void reconfigure(TimePoint now, const config::RouteConfig& route, std::string fingerprint);

    /// Manual commands (POST /admin/routes/NAME/...), recorded like automatic changes.
    /// promote: -> promoted (100%) from shadowing, rolled_back or ramping.
    ManualOutcome promote(TimePoint now, std::string reason);
    /// rollback: ramping or promoted -> rolled_back, with cooldown and evidence restart.
    ManualOutcome rollback(TimePoint now, std::string reason);
    ManualOutcome pin(TimePoint now, Side side, std::string reason);
    ManualOutcome unpin(TimePoint now, std::string reason);

    /// Share of live requests the candidate serves: 0, a ramp share (ramp[i] / 100), or 1.
    double candidate_share() const;
    /// Share of live requests mirrored to the side that did not serve them: `sample_rate`
    /// while the primary serves or a ramp splits traffic, `shadow_after_promotion` while the
    /// candidate serves all (promoted, pinned candidate).
    double mirror_rate() const;
    /// Where a mirrored copy goes: always the side that did not serve the request (the
    /// candidate while shadowing, the primary once promoted, the other side while ramping).
    Side mirror_target(Side served) const;

    RouteState state() const { return state_; }
    Status status() const;

    /// The events queued since the last call, oldest first.
    std::vector<TransitionEvent> take_events();

    /// The whole state (window contents, statistics, timers, queued events) as JSON text.
    std::string to_json() const;
    /// Restores a controller saved by to_json, replays the verdicts that reached the log after
    /// that save (a kill -9 between a verdict's append and the next save must not lose it),
    /// then applies `route` and `fingerprint` exactly as reconfigure would (so a config
    /// changed while down resets evidence or moves a pin, with events). Throws
    /// std::invalid_argument on text that is not such a state.
    ///
    /// Replayed: the log's newest lines numbered total_verdicts() + 1, + 2, ... in an unbroken
    /// run up to the last line, none older than the saved state's `since`; each is recorded
    /// once, at its logged time, in log order. A line numbered at or below the saved count
    /// (already in the state), a gap in the numbering or an older line (a previous
    /// incarnation of the route) ends the run. Empty `log`: nothing replayed.
    ///
    /// A state saved before the test counters ("flip_test", "rollback_test") existed restores
    /// each at the most tests its verdicts could have run: 1 + total_verdicts / (the fewest
    /// verdicts one rejection takes: 8 fails for the flip test, 53 passes for the rollback
    /// test at the defaults): at least the tests that ended in a rejection (restarts at
    /// rollbacks and reloads were not recorded), so the budget left is not overstated by
    /// them; the cost is a higher acceptance bound, which grows only like 2 ln k.
    static Controller from_json(std::string_view json, const config::RouteConfig& route,
                                std::string fingerprint, TimePoint now,
                                const VerdictLogTail& log = {});

    /// Verdicts of any kind since the controller began; a new verdict's log "seq".
    std::uint64_t total_verdicts() const { return total_verdicts_; }

  private:
    friend struct ControllerJson;

    /// The states the controller watches for a rollback: ramping and promoted.
    static bool watched(RouteState state);
    void apply_config(const config::RouteConfig& route);

    // Inputs
    void add_to_window(VerdictKind verdict);
    void update_sequential_tests(bool pass);
    void update_hold_clock(TimePoint now);
    void replay_unsaved(const VerdictLogTail& log);

    // Decisions
    void decide(TimePoint now);
    bool try_flip(TimePoint now);
    bool try_advance_ramp(TimePoint now);
    bool try_roll_back(TimePoint now);
    bool verdicts_stopped(TimePoint now) const;
    bool held_by_judge_errors() const { return error_run_ >= kJudgeErrorHoldRun; }
    double flip_accept() const { return accept_bound(steps_.alpha, flip_test_); }
    double rollback_accept() const {
        return accept_bound(steps_.alpha, std::max<std::uint64_t>(rollback_test_, 1));
    }

    // Changes
    void transition(TimePoint now, RouteState to, std::size_t ramp_step, Trigger trigger,
                    std::string reason, Side pin = Side::primary);
    void watch_candidate(TimePoint now);
    void restart_flip_evidence();
    void start_rollback_test();
    void reset_evidence(TimePoint now, std::string reason);
    void restart_tests(TimePoint now);
    void apply_mode(TimePoint now, config::PromotionMode old_mode);
    void apply_ramp_change(TimePoint now, double old_share);
    /// True when the ramp has no step `step` below 100: that step is promoted.
    bool ramp_done(std::size_t step) const;
    /// -> ramping at `step`, or promoted when ramp_done(step).
    void enter_ramp_step(TimePoint now, std::size_t step, Trigger trigger, std::string reason);
    /// A manual command: refused, unchanged, or the transition to `to` with `reason` (or
    /// `fallback` when empty).
    ManualOutcome manual(TimePoint now, bool refused, bool unchanged, RouteState to,
                         std::string reason, std::string_view fallback, Side pin = Side::primary);
    RouteState unpinned_state() const;
    void push_event(TimePoint now, EventKind kind, Trigger trigger, RouteState from, Side from_side,
                    std::string reason, const Evidence& evidence);
    Side live_side() const;
    Evidence evidence() const;

    // Configuration
    config::PromotionConfig promotion_;
    double sample_rate_ = 0.0;
    std::string fingerprint_;
    SprtSteps steps_;

    // Serving state
    RouteState state_ = RouteState::shadowing;
    Side pinned_side_ = Side::primary;  ///< meaningful while pinned
    std::size_t ramp_step_ = 0;
    TimePoint since_;
    std::optional<TimePoint> cooldown_until_;

    // Flip evidence
    std::deque<bool> window_;  ///< last `window` pass/fail verdicts, true = pass
    std::uint32_t window_passes_ = 0;
    std::deque<bool> recent_;  ///< last `window` verdicts of any kind, true = error
    std::uint32_t recent_errors_ = 0;
    double flip_llr_ = 0.0;
    std::uint64_t flip_test_ = 1;  ///< k of the running flip test; durable
    std::uint32_t sprt_rejections_ = 0;
    std::optional<TimePoint> above_since_;
    std::uint32_t error_run_ = 0;
    std::uint64_t evidence_verdicts_ = 0;
    std::uint64_t total_verdicts_ = 0;
    std::optional<TimePoint> last_verdict_;

    // Watch while the candidate is live
    double rollback_llr_ = 0.0;
    std::uint64_t rollback_test_ = 0;  ///< k of the current rollback test, 0 before any; durable
    std::deque<bool> live_;            ///< last kLiveWindow candidate live requests, true = error
    std::uint32_t live_errors_ = 0;
    TimePoint step_started_;
    std::uint32_t step_samples_ = 0;
    TimePoint stall_anchor_;         ///< later of the last verdict and the flip
    double mirrors_expected_ = 0.0;  ///< sum of mirror_rate() over live requests since

    std::vector<TransitionEvent> events_;
};

/// One event as a JSON object (times as RFC 3339 UTC text), for logs and the durable store.
/// `2026-11-28T01:02:03.456Z`: UTC with milliseconds, as every time in logs and admin JSON.
std::string rfc3339(TimePoint time);

/// The inverse of rfc3339() (exactly its format); nullopt for anything else.
std::optional<TimePoint> parse_rfc3339(const char* text);

std::string to_json(const TransitionEvent& event);

}  // namespace turnout::shadow
