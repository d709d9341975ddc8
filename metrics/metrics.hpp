#pragma once
/// turnout's Prometheus metrics (CONTRACT.md "Metrics"), served as text on the admin listener's
/// `GET /metrics`.
///
/// One `Metrics` per process, created at start-up and kept across config reloads. The data
/// plane resolves a handle per (route, provider, model) when a config is loaded
/// (`Metrics::target`) and per route (`Metrics::route`), and records through the handle on the
/// hot path: plain atomic operations, no lock shared across threads (the one exception is the
/// first request with a given status code on a handle, which resolves that code's series once).
///
/// Label values only ever come from config names (route, provider, model) and the fixed enums
/// below, never from client input, so the number of series is bounded by the config whatever
/// clients send. Requests that match no route are recorded on `Metrics::unmatched()`.
///
/// Thread safety: every member function of `Metrics` and of the handles may be called from any
/// thread. Lifetime: a handle keeps the series it records into alive, so it stays valid even
/// after the `Metrics` that made it is destroyed (it then records into an unscraped registry).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace turnout::metrics {

/// `kind` label of `turnout_upstream_errors_total`.
enum class UpstreamErrorKind {
    connect,
    timeout,
    status_5xx,
    status_429,
    reset,
    tls,
    protocol,
    circuit_open
};
/// `outcome` label of `turnout_shadow_requests_total`.
enum class ShadowOutcome { sent, dropped, error };
/// `verdict` label of `turnout_judge_verdicts_total`.
enum class Verdict { pass, fail, error };
/// `state` label of `turnout_route_state`.
enum class RouteStateLabel { shadowing, ramping, promoted, rolled_back, pinned };
/// `to` label of `turnout_route_flips_total`.
enum class FlipTo { primary, candidate };
/// `call` label of the shadow spend metrics: the mirrored request or the judge's call.
enum class ShadowCall { mirror, judge };

/// The label value of each enum, exactly as the contract spells it.
std::string_view label_value(UpstreamErrorKind kind);
std::string_view label_value(ShadowOutcome outcome);
std::string_view label_value(Verdict verdict);
std::string_view label_value(RouteStateLabel state);
std::string_view label_value(FlipTo to);
std::string_view label_value(ShadowCall call);

/// Upper bounds (seconds) of the LLM latency histograms: request duration, time to first token,
/// shadow calls. From 5 ms (a cached or tiny answer) to 10 min (a long reasoning answer).
inline constexpr std::array<double, 17> kLatencyBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600};
/// Upper bounds (seconds) of `turnout_overhead_seconds`: 10 µs to 100 ms.
inline constexpr std::array<double, 13> kOverheadBuckets = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
    0.0025,  0.005,    0.01,    0.025,  0.05,    0.1};
/// Upper bounds of `turnout_judge_score`: 0 to 100 by 5 (so 90 and 95, the usual `pass_score`
/// values, are bucket edges).
inline constexpr std::array<double, 21> kScoreBuckets = {0,  5,  10, 15, 20, 25, 30, 35, 40, 45, 50,
                                                         55, 60, 65, 70, 75, 80, 85, 90, 95, 100};

namespace detail {
class AtomicHistogram;
struct State;
struct Caches;
}  // namespace detail

/// What one (route, provider, model) target records for live traffic. Obtained from
/// `Metrics::target`; kept by the data plane for as long as the config that resolved it.
class TargetMetrics {
  public:
    TargetMetrics(const TargetMetrics&) = delete;
    TargetMetrics& operator=(const TargetMetrics&) = delete;
    ~TargetMetrics();

    /// One finished client request answered (or failed) on this target: counts it in
    /// `turnout_requests_total{code}` (codes outside 100..599 become "0") and observes the whole
    /// request's duration.
    void request(unsigned status_code, double duration_seconds);
    /// Time from receiving the request to the first response byte relayed to the client.
    void time_to_first_token(double seconds);
    /// Usage the upstream reported: tokens by direction, their cost at this target's price, and
    /// the same tokens at the route's baseline (primary) price for
    /// `turnout_baseline_cost_usd_total`.
    void tokens(std::uint64_t input, std::uint64_t output);
    /// Time spent inside turnout for one request, upstream time excluded.
    void overhead(double seconds);
    /// `turnout_upstream_errors_total{provider=this target's provider, kind}`.
    void upstream_error(UpstreamErrorKind kind);

    /// The cost in USD of `input` + `output` tokens at this target's price.
    double cost_usd(std::uint64_t input, std::uint64_t output) const;

    const std::string& route() const { return route_; }
    const std::string& provider() const { return provider_; }
    const std::string& model() const { return model_; }
    const config::PriceConfig& price() const { return price_; }
    const config::PriceConfig& baseline_price() const { return baseline_; }

  private:
    friend class Metrics;
    /// Status codes 100..599 map to slots 1..500; slot 0 is every other value ("0").
    static constexpr std::size_t kCodeSlots = 501;

    TargetMetrics(std::shared_ptr<detail::State> state, std::string route, std::string provider,
                  std::string model, const config::PriceConfig& price,
                  const config::PriceConfig& baseline);
    prometheus::Counter& resolve_code(std::size_t slot);

    std::shared_ptr<detail::State> state_;  // keeps the series below alive
    std::string route_;
    std::string provider_;
    std::string model_;
    config::PriceConfig price_;
    config::PriceConfig baseline_;
    // Filled once per code under codes_mutex_, then read without locking.
    std::array<std::atomic<prometheus::Counter*>, kCodeSlots> codes_{};
    std::mutex codes_mutex_;
    detail::AtomicHistogram* duration_ = nullptr;
    detail::AtomicHistogram* ttft_ = nullptr;
    detail::AtomicHistogram* overhead_ = nullptr;
    prometheus::Counter* tokens_input_ = nullptr;
    prometheus::Counter* tokens_output_ = nullptr;
    prometheus::Counter* cost_ = nullptr;
    prometheus::Counter* baseline_cost_ = nullptr;
    std::array<prometheus::Counter*, 8> upstream_errors_{};
};

/// What one route records for the shadow / judge / promotion loop. Obtained from
/// `Metrics::route`.
class RouteMetrics {
  public:
    RouteMetrics(const RouteMetrics&) = delete;
    RouteMetrics& operator=(const RouteMetrics&) = delete;
    ~RouteMetrics();

    /// A live request chosen for shadowing: `sent` (mirrored), `dropped` (queue full, body too
    /// large) or `error` (the mirrored call failed).
    void shadow_request(ShadowOutcome outcome);
    /// One judged pair; `score` (0..100) is observed in `turnout_judge_score` when present.
    void judge_verdict(Verdict verdict, std::optional<double> score);
    /// `turnout_pass_rate`: the raw pass rate over the window, 0..1 (no series before the first
    /// call).
    void set_pass_rate(double pass_rate);
    /// `turnout_route_samples`: verdicts (passes + fails) in the window.
    void set_samples(std::uint64_t samples);
    /// `turnout_pass_rate_threshold{bound=promote|rollback}`, from the route's `promotion`
    /// config, so dashboards and alerts compare the pass rate with the route's own thresholds.
    void set_thresholds(double threshold, double rollback_threshold);
    /// `turnout_route_state`: 1 for `state`, 0 for the four others.
    void set_route_state(RouteStateLabel state);
    /// One flip (automatic or manual) toward `to`.
    void route_flip(FlipTo to);
    /// Sets every state series to 0: the route left the config.
    void clear_route_state();

    const std::string& route() const { return route_; }

  private:
    friend class Metrics;
    RouteMetrics(std::shared_ptr<detail::State> state, std::string route);

    /// The series in `slot`, added to `family` with `labels` on first use.
    prometheus::Gauge& lazy_gauge(std::atomic<prometheus::Gauge*>& slot,
                                  prometheus::Family<prometheus::Gauge>& family,
                                  const prometheus::Labels& labels);

    std::shared_ptr<detail::State> state_;
    std::string route_;
    std::array<prometheus::Counter*, 3> shadow_{};
    std::array<prometheus::Counter*, 3> verdicts_{};
    detail::AtomicHistogram* score_ = nullptr;
    // Absent until first set: a 0 would read as "everything fails", and prometheus-cpp writes
    // NaN as "Nan", which strict parsers reject.
    std::atomic<prometheus::Gauge*> pass_rate_{nullptr};
    std::atomic<prometheus::Gauge*> threshold_promote_{nullptr};
    std::atomic<prometheus::Gauge*> threshold_rollback_{nullptr};
    prometheus::Gauge* samples_ = nullptr;
    std::array<prometheus::Gauge*, 5> states_{};
    // Serialises set_route_state (so concurrent calls leave exactly one 1) and lazy_gauge.
    std::mutex mutex_;
    std::array<prometheus::Counter*, 2> flips_{};
};

/// Spend and latency of background calls made for a route's evaluation (the mirrored request
/// and the judge call), kept apart from live traffic: `turnout_shadow_*`. Obtained from
/// `Metrics::shadow_target`.
class ShadowTargetMetrics {
  public:
    ShadowTargetMetrics(const ShadowTargetMetrics&) = delete;
    ShadowTargetMetrics& operator=(const ShadowTargetMetrics&) = delete;
    ~ShadowTargetMetrics();

    /// Duration of one finished background call.
    void duration(double seconds);
    /// Usage of one background call and its cost at this target's price.
    void tokens(std::uint64_t input, std::uint64_t output);

  private:
    friend class Metrics;
    ShadowTargetMetrics(std::shared_ptr<detail::State> state, const std::string& route,
                        const std::string& provider, ShadowCall call,
                        const config::PriceConfig& price);

    std::shared_ptr<detail::State> state_;
    config::PriceConfig price_;
    detail::AtomicHistogram* duration_ = nullptr;
    prometheus::Counter* tokens_input_ = nullptr;
    prometheus::Counter* tokens_output_ = nullptr;
    prometheus::Counter* cost_ = nullptr;
};

/// The process's metrics registry. See the file comment for threading and cardinality.
class Metrics {
  public:
    /// Content-Type of `render()`'s output (Prometheus text format 0.0.4).
    static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
    /// Route, provider and model label value of requests that match no route.
    static constexpr const char* kNone = "none";

    explicit Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    /// Every metric in the text exposition format, families sorted by name.
    std::string render() const;

    /// The handle of one live target. Idempotent and cached: the same arguments give the same
    /// handle. `baseline` is the price the route's live traffic is compared against for the
    /// cost saving (the route's primary); absent = this target's own price (no saving).
    /// A changed price (after a reload) gives a new handle over the same series.
    std::shared_ptr<TargetMetrics> target(const std::string& route, const std::string& provider,
                                          const std::string& model,
                                          const config::PriceConfig& price,
                                          std::optional<config::PriceConfig> baseline = {});
    /// The handle for requests that match no route (route, provider, model all "none").
    std::shared_ptr<TargetMetrics> unmatched();
    /// The handle of one route's shadow / judge / promotion metrics. Cached per name.
    std::shared_ptr<RouteMetrics> route(const std::string& route);
    /// The handle of one route's background calls to `provider` (mirror or judge). Cached.
    std::shared_ptr<ShadowTargetMetrics> shadow_target(const std::string& route,
                                                       const std::string& provider, ShadowCall call,
                                                       const config::PriceConfig& price);

    /// `turnout_upstream_errors_total{provider, kind}`; takes a lock: on the data plane prefer
    /// `TargetMetrics::upstream_error`.
    void upstream_error(const std::string& provider, UpstreamErrorKind kind);
    /// `turnout_inflight_requests` += delta (+1 when a request starts, -1 when it ends).
    void inflight_add(int delta);
    /// `turnout_config_reloads_total{result=success|failure}`.
    void config_reload(bool success);

    /// Shorthands for `route(name)->...`: each looks the route up under a lock.
    void shadow_request(const std::string& route, ShadowOutcome outcome);
    void judge_verdict(const std::string& route, Verdict verdict, std::optional<double> score);
    void set_pass_rate(const std::string& route, double pass_rate);
    void set_route_state(const std::string& route, RouteStateLabel state);
    void route_flip(const std::string& route, FlipTo to);

    /// After a reload: routes not in `routes` get every `turnout_route_state` series set to 0, so
    /// no alert keeps firing for a route that no longer exists. Counters stay (they just stop).
    void retain_routes(const std::vector<std::string>& routes);

  private:
    // Handles share state_ (the registry); only Metrics holds caches_, which holds the handles,
    // so there is no ownership cycle.
    std::shared_ptr<detail::State> state_;
    std::unique_ptr<detail::Caches> caches_;
};

}  // namespace turnout::metrics
