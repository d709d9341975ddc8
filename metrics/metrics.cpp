// turnout's Prometheus registry. Counters and gauges are prometheus-cpp's (lock-free atomics);
// histograms are our own AtomicHistogram because prometheus-cpp 1.0's Histogram takes a mutex on
// every Observe, which every I/O thread serving the same route would contend on.

#include "metrics/metrics.hpp"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <tuple>
#include <utility>

namespace turnout::metrics {

std::string_view label_value(UpstreamErrorKind kind) {
    switch (kind) {
        case UpstreamErrorKind::connect:
            return "connect";
        case UpstreamErrorKind::timeout:
            return "timeout";
        case UpstreamErrorKind::status_5xx:
            return "status_5xx";
        case UpstreamErrorKind::status_429:
            return "status_429";
        case UpstreamErrorKind::reset:
            return "reset";
        case UpstreamErrorKind::tls:
            return "tls";
        case UpstreamErrorKind::protocol:
            return "protocol";
        case UpstreamErrorKind::circuit_open:
            return "circuit_open";
    }
    return "protocol";
}

std::string_view label_value(ShadowOutcome outcome) {
    switch (outcome) {
        case ShadowOutcome::sent:
            return "sent";
        case ShadowOutcome::dropped:
            return "dropped";
        case ShadowOutcome::error:
            return "error";
    }
    return "error";
}

std::string_view label_value(Verdict verdict) {
    switch (verdict) {
        case Verdict::pass:
            return "pass";
        case Verdict::fail:
            return "fail";
        case Verdict::error:
            return "error";
    }
    return "error";
}

std::string_view label_value(RouteStateLabel state) {
    switch (state) {
        case RouteStateLabel::shadowing:
            return "shadowing";
        case RouteStateLabel::ramping:
            return "ramping";
        case RouteStateLabel::promoted:
            return "promoted";
        case RouteStateLabel::rolled_back:
            return "rolled_back";
        case RouteStateLabel::pinned:
            return "pinned";
    }
    return "pinned";
}

std::string_view label_value(FlipTo to) { return to == FlipTo::primary ? "primary" : "candidate"; }

std::string_view label_value(ShadowCall call) {
    return call == ShadowCall::mirror ? "mirror" : "judge";
}

namespace {

constexpr std::array kAllErrorKinds = {
    UpstreamErrorKind::connect,    UpstreamErrorKind::timeout,     UpstreamErrorKind::status_5xx,
    UpstreamErrorKind::status_429, UpstreamErrorKind::reset,       UpstreamErrorKind::tls,
    UpstreamErrorKind::protocol,   UpstreamErrorKind::circuit_open};
constexpr std::array kAllOutcomes = {ShadowOutcome::sent, ShadowOutcome::dropped,
                                     ShadowOutcome::error};
constexpr std::array kAllVerdicts = {Verdict::pass, Verdict::fail, Verdict::error};
constexpr std::array kAllStates = {RouteStateLabel::shadowing, RouteStateLabel::ramping,
                                   RouteStateLabel::promoted, RouteStateLabel::rolled_back,
                                   RouteStateLabel::pinned};
constexpr std::array kAllFlips = {FlipTo::primary, FlipTo::candidate};

std::string str(std::string_view view) { return std::string(view); }

/// Durations from a monotonic clock are never negative; a NaN would poison the sum forever.
bool usable_duration(double& seconds) {
    if (std::isnan(seconds)) return false;
    seconds = std::max(seconds, 0.0);
    return true;
}

bool same_price(const config::PriceConfig& a, const config::PriceConfig& b) {
    return a.input_per_mtok == b.input_per_mtok && a.output_per_mtok == b.output_per_mtok;
}

/// Errors per provider, all seven kinds resolved up front so ratios start from 0.
std::array<prometheus::Counter*, 8> resolve_error_kinds(
    prometheus::Family<prometheus::Counter>& family, const std::string& provider) {
    std::array<prometheus::Counter*, 8> counters{};
    for (std::size_t i = 0; i < kAllErrorKinds.size(); ++i) {
        counters[i] =
            &family.Add({{"provider", provider}, {"kind", str(label_value(kAllErrorKinds[i]))}});
    }
    return counters;
}

}  // namespace

namespace detail {

/// A Prometheus histogram whose Observe is two relaxed atomic adds. A scrape reads each bucket
/// once and derives `_count` from the same reads, so `_count` always equals the `+Inf` bucket;
/// `_sum` may lag by an observation in flight, as in the Go client without its hot/cold swap.
class AtomicHistogram {
  public:
    explicit AtomicHistogram(std::span<const double> bounds)
        : bounds_(bounds), counts_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
        for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
    }

    void observe(double value) {
        if (std::isnan(value)) return;
        // `le` is inclusive: the first bound >= value; past the last one is the +Inf bucket.
        const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
        counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(
            1, std::memory_order_relaxed);
        sum_.fetch_add(value, std::memory_order_relaxed);
    }

    prometheus::ClientMetric::Histogram collect() const {
        prometheus::ClientMetric::Histogram histogram;
        std::uint64_t cumulative = 0;
        histogram.bucket.reserve(bounds_.size() + 1);
        for (std::size_t i = 0; i <= bounds_.size(); ++i) {
            cumulative += counts_[i].load(std::memory_order_relaxed);
            prometheus::ClientMetric::Bucket bucket;
            bucket.cumulative_count = cumulative;
            bucket.upper_bound =
                i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity();
            histogram.bucket.push_back(bucket);
        }
        histogram.sample_count = cumulative;
        histogram.sample_sum = sum_.load(std::memory_order_relaxed);
        return histogram;
    }

  private:
    std::span<const double> bounds_;                        // static storage (the k*Buckets arrays)
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative
    std::atomic<double> sum_{0.0};
};

/// A family of AtomicHistograms; `add` locks (config load), `observe` on a series does not.
class HistogramFamily {
  public:
    HistogramFamily(std::string name, std::string help, std::span<const double> bounds)
        : name_(std::move(name)), help_(std::move(help)), bounds_(bounds) {}

    /// The series for `labels`, created on first use; the same labels give the same series.
    AtomicHistogram& add(const prometheus::Labels& labels) {
        const std::lock_guard lock(mutex_);
        auto& slot = series_[labels];
        if (!slot) slot = std::make_unique<AtomicHistogram>(bounds_);
        return *slot;
    }

    prometheus::MetricFamily collect() const {
        prometheus::MetricFamily family;
        family.name = name_;
        family.help = help_;
        family.type = prometheus::MetricType::Histogram;
        const std::lock_guard lock(mutex_);
        family.metric.reserve(series_.size());
        for (const auto& [labels, histogram] : series_) {
            prometheus::ClientMetric metric;
            for (const auto& [name, value] : labels) metric.label.push_back({name, value});
            metric.histogram = histogram->collect();
            family.metric.push_back(std::move(metric));
        }
        return family;
    }

  private:
    std::string name_;
    std::string help_;
    std::span<const double> bounds_;
    mutable std::mutex mutex_;
    std::map<prometheus::Labels, std::unique_ptr<AtomicHistogram>> series_;
};

/// The registry and every family. Shared by Metrics and every handle (handles hold raw pointers
/// to series owned here).
struct State {
    prometheus::Registry registry;

    prometheus::Family<prometheus::Counter>& requests =
        counter("turnout_requests_total",
                "Client requests by route, target provider and model, and HTTP status code.");
    prometheus::Family<prometheus::Counter>& upstream_errors =
        counter("turnout_upstream_errors_total",
                "Failed upstream attempts by provider and kind (connect, timeout, status_5xx, "
                "status_429, reset, tls, protocol, circuit_open).");
    prometheus::Family<prometheus::Counter>& tokens =
        counter("turnout_tokens_total", "Tokens of live traffic as reported by the upstream.");
    prometheus::Family<prometheus::Counter>& cost =
        counter("turnout_cost_usd_total", "Cost of live traffic in USD at the provider's price.");
    prometheus::Family<prometheus::Counter>& baseline_cost =
        counter("turnout_baseline_cost_usd_total",
                "What the route's live traffic would have cost at its primary's price (the same "
                "tokens); minus turnout_cost_usd_total it is the saving.");
    prometheus::Family<prometheus::Counter>& shadow_requests =
        counter("turnout_shadow_requests_total", "Live requests chosen for shadowing, by outcome.");
    prometheus::Family<prometheus::Counter>& shadow_tokens =
        counter("turnout_shadow_tokens_total",
                "Tokens spent on background calls (mirror copies and judge calls).");
    prometheus::Family<prometheus::Counter>& shadow_cost = counter(
        "turnout_shadow_cost_usd_total", "Cost of background calls (mirror and judge) in USD.");
    prometheus::Family<prometheus::Counter>& verdicts =
        counter("turnout_judge_verdicts_total", "Judged pairs by verdict (pass, fail, error).");
    prometheus::Family<prometheus::Counter>& flips = counter(
        "turnout_route_flips_total", "Route flips (automatic or manual) by the side now serving.");
    prometheus::Family<prometheus::Counter>& reloads =
        counter("turnout_config_reloads_total", "Config reloads by result.");

    prometheus::Family<prometheus::Gauge>& pass_rate =
        gauge("turnout_pass_rate",
              "Raw judged pass rate over the route's window (absent before the first verdict).");
    prometheus::Family<prometheus::Gauge>& samples =
        gauge("turnout_route_samples", "Verdicts (passes + fails) in the route's window.");
    prometheus::Family<prometheus::Gauge>& thresholds =
        gauge("turnout_pass_rate_threshold",
              "The route's promotion threshold (bound=promote) and rollback_threshold "
              "(bound=rollback).");
    prometheus::Family<prometheus::Gauge>& route_state =
        gauge("turnout_route_state", "1 for the route's current state, 0 for the others.");
    prometheus::Family<prometheus::Gauge>& inflight =
        gauge("turnout_inflight_requests", "Client requests being served.");

    HistogramFamily request_duration{
        "turnout_request_duration_seconds",
        "Duration of client requests, from the request to the last byte sent.", kLatencyBuckets};
    HistogramFamily ttft{"turnout_time_to_first_token_seconds",
                         "Time from the request to the first response byte sent to the client.",
                         kLatencyBuckets};
    HistogramFamily overhead{"turnout_overhead_seconds",
                             "Time spent inside turnout per request, upstream time excluded.",
                             kOverheadBuckets};
    HistogramFamily judge_score{"turnout_judge_score", "Scores (0-100) the judge returned.",
                                kScoreBuckets};
    HistogramFamily shadow_duration{"turnout_shadow_duration_seconds",
                                    "Duration of background calls (mirror and judge).",
                                    kLatencyBuckets};

    prometheus::Gauge& inflight_requests = inflight.Add({});
    prometheus::Counter& reload_success = reloads.Add({{"result", "success"}});
    prometheus::Counter& reload_failure = reloads.Add({{"result", "failure"}});

    std::vector<const HistogramFamily*> histograms() const {
        return {&request_duration, &ttft, &overhead, &judge_score, &shadow_duration};
    }

  private:
    prometheus::Family<prometheus::Counter>& counter(const char* name, const char* help) {
        return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
    }
    prometheus::Family<prometheus::Gauge>& gauge(const char* name, const char* help) {
        return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
    }
};

/// Handle caches, owned by Metrics alone.
struct Caches {
    std::mutex mutex;
    std::map<std::tuple<std::string, std::string, std::string>, std::shared_ptr<TargetMetrics>>
        targets;
    std::map<std::string, std::shared_ptr<RouteMetrics>> routes;
    std::map<std::tuple<std::string, std::string, ShadowCall>, std::shared_ptr<ShadowTargetMetrics>>
        shadow_targets;
    std::map<std::string, std::array<prometheus::Counter*, 8>> provider_errors;
};

}  // namespace detail

// --- TargetMetrics --------------------------------------------------------------------------

TargetMetrics::TargetMetrics(std::shared_ptr<detail::State> state, std::string route,
                             std::string provider, std::string model,
                             const config::PriceConfig& price, const config::PriceConfig& baseline)
    : state_(std::move(state)),
      route_(std::move(route)),
      provider_(std::move(provider)),
      model_(std::move(model)),
      price_(price),
      baseline_(baseline) {
    detail::State& s = *state_;
    const prometheus::Labels route_provider = {{"route", route_}, {"provider", provider_}};
    duration_ = &s.request_duration.add(route_provider);
    ttft_ = &s.ttft.add(route_provider);
    overhead_ = &s.overhead.add({{"route", route_}});
    tokens_input_ =
        &s.tokens.Add({{"route", route_}, {"provider", provider_}, {"direction", "input"}});
    tokens_output_ =
        &s.tokens.Add({{"route", route_}, {"provider", provider_}, {"direction", "output"}});
    cost_ = &s.cost.Add(route_provider);
    baseline_cost_ = &s.baseline_cost.Add({{"route", route_}});
    upstream_errors_ = resolve_error_kinds(s.upstream_errors, provider_);
}

TargetMetrics::~TargetMetrics() = default;

prometheus::Counter& TargetMetrics::resolve_code(std::size_t slot) {
    const std::lock_guard lock(codes_mutex_);
    prometheus::Counter* counter = codes_[slot].load(std::memory_order_acquire);
    if (counter != nullptr) return *counter;
    const std::string code = slot == 0 ? "0" : std::to_string(slot + 99);
    counter = &state_->requests.Add(
        {{"route", route_}, {"provider", provider_}, {"model", model_}, {"code", code}});
    codes_[slot].store(counter, std::memory_order_release);
    return *counter;
}

void TargetMetrics::request(unsigned status_code, double duration_seconds) {
    const std::size_t slot =
        status_code >= 100 && status_code <= 599 ? static_cast<std::size_t>(status_code) - 99 : 0;
    prometheus::Counter* counter = codes_[slot].load(std::memory_order_acquire);
    if (counter == nullptr) counter = &resolve_code(slot);
    counter->Increment();
    if (usable_duration(duration_seconds)) duration_->observe(duration_seconds);
}

void TargetMetrics::time_to_first_token(double seconds) {
    if (usable_duration(seconds)) ttft_->observe(seconds);
}

void TargetMetrics::tokens(std::uint64_t input, std::uint64_t output) {
    tokens_input_->Increment(static_cast<double>(input));
    tokens_output_->Increment(static_cast<double>(output));
    cost_->Increment(cost_usd(input, output));
    baseline_cost_->Increment(config::cost_usd(baseline_, input, output));
}

void TargetMetrics::overhead(double seconds) {
    if (usable_duration(seconds)) overhead_->observe(seconds);
}

void TargetMetrics::upstream_error(UpstreamErrorKind kind) {
    upstream_errors_[static_cast<std::size_t>(kind)]->Increment();
}

double TargetMetrics::cost_usd(std::uint64_t input, std::uint64_t output) const {
    return config::cost_usd(price_, input, output);
}

// --- RouteMetrics ---------------------------------------------------------------------------

RouteMetrics::RouteMetrics(std::shared_ptr<detail::State> state, std::string route)
    : state_(std::move(state)), route_(std::move(route)) {
    detail::State& s = *state_;
    for (std::size_t i = 0; i < kAllOutcomes.size(); ++i) {
        shadow_[i] = &s.shadow_requests.Add(
            {{"route", route_}, {"outcome", str(label_value(kAllOutcomes[i]))}});
    }
    for (std::size_t i = 0; i < kAllVerdicts.size(); ++i) {
        verdicts_[i] =
            &s.verdicts.Add({{"route", route_}, {"verdict", str(label_value(kAllVerdicts[i]))}});
    }
    score_ = &s.judge_score.add({{"route", route_}});
    samples_ = &s.samples.Add({{"route", route_}});
    for (std::size_t i = 0; i < kAllStates.size(); ++i) {
        states_[i] =
            &s.route_state.Add({{"route", route_}, {"state", str(label_value(kAllStates[i]))}});
    }
    for (std::size_t i = 0; i < kAllFlips.size(); ++i) {
        flips_[i] = &s.flips.Add({{"route", route_}, {"to", str(label_value(kAllFlips[i]))}});
    }
}

RouteMetrics::~RouteMetrics() = default;

void RouteMetrics::shadow_request(ShadowOutcome outcome) {
    shadow_[static_cast<std::size_t>(outcome)]->Increment();
}

void RouteMetrics::judge_verdict(Verdict verdict, std::optional<double> score) {
    verdicts_[static_cast<std::size_t>(verdict)]->Increment();
    if (score) score_->observe(*score);
}

prometheus::Gauge& RouteMetrics::lazy_gauge(std::atomic<prometheus::Gauge*>& slot,
                                            prometheus::Family<prometheus::Gauge>& family,
                                            const prometheus::Labels& labels) {
    prometheus::Gauge* gauge = slot.load(std::memory_order_acquire);
    if (gauge != nullptr) return *gauge;
    const std::lock_guard lock(mutex_);
    gauge = slot.load(std::memory_order_acquire);
    if (gauge == nullptr) {
        gauge = &family.Add(labels);
        slot.store(gauge, std::memory_order_release);
    }
    return *gauge;
}

void RouteMetrics::set_pass_rate(double pass_rate) {
    lazy_gauge(pass_rate_, state_->pass_rate, {{"route", route_}}).Set(pass_rate);
}

void RouteMetrics::set_samples(std::uint64_t samples) {
    samples_->Set(static_cast<double>(samples));
}

void RouteMetrics::set_thresholds(double threshold, double rollback_threshold) {
    lazy_gauge(threshold_promote_, state_->thresholds, {{"route", route_}, {"bound", "promote"}})
        .Set(threshold);
    lazy_gauge(threshold_rollback_, state_->thresholds, {{"route", route_}, {"bound", "rollback"}})
        .Set(rollback_threshold);
}

void RouteMetrics::set_route_state(RouteStateLabel state) {
    const std::lock_guard lock(mutex_);
    // Others to 0 first: a scrape in between sees no state rather than two.
    const auto current = static_cast<std::size_t>(state);
    for (std::size_t i = 0; i < states_.size(); ++i) {
        if (i != current) states_[i]->Set(0);
    }
    states_[current]->Set(1);
}

void RouteMetrics::route_flip(FlipTo to) { flips_[static_cast<std::size_t>(to)]->Increment(); }

void RouteMetrics::clear_route_state() {
    const std::lock_guard lock(mutex_);
    for (prometheus::Gauge* gauge : states_) gauge->Set(0);
}

// --- ShadowTargetMetrics --------------------------------------------------------------------

ShadowTargetMetrics::ShadowTargetMetrics(std::shared_ptr<detail::State> state,
                                         const std::string& route, const std::string& provider,
                                         ShadowCall call, const config::PriceConfig& price)
    : state_(std::move(state)), price_(price) {
    detail::State& s = *state_;
    const std::string call_value = str(label_value(call));
    const prometheus::Labels labels = {
        {"route", route}, {"provider", provider}, {"call", call_value}};
    duration_ = &s.shadow_duration.add(labels);
    prometheus::Labels input = labels;
    input["direction"] = "input";
    prometheus::Labels output = labels;
    output["direction"] = "output";
    tokens_input_ = &s.shadow_tokens.Add(input);
    tokens_output_ = &s.shadow_tokens.Add(output);
    cost_ = &s.shadow_cost.Add(labels);
}

ShadowTargetMetrics::~ShadowTargetMetrics() = default;

void ShadowTargetMetrics::duration(double seconds) {
    if (usable_duration(seconds)) duration_->observe(seconds);
}

void ShadowTargetMetrics::tokens(std::uint64_t input, std::uint64_t output) {
    tokens_input_->Increment(static_cast<double>(input));
    tokens_output_->Increment(static_cast<double>(output));
    cost_->Increment(config::cost_usd(price_, input, output));
}

// --- Metrics --------------------------------------------------------------------------------

Metrics::Metrics()
    : state_(std::make_shared<detail::State>()), caches_(std::make_unique<detail::Caches>()) {}

Metrics::~Metrics() = default;

std::string Metrics::render() const {
    std::vector<prometheus::MetricFamily> families = state_->registry.Collect();
    for (const detail::HistogramFamily* histogram : state_->histograms()) {
        families.push_back(histogram->collect());
    }
    std::sort(families.begin(), families.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    return std::move(out).str();
}

std::shared_ptr<TargetMetrics> Metrics::target(const std::string& route,
                                               const std::string& provider,
                                               const std::string& model,
                                               const config::PriceConfig& price,
                                               std::optional<config::PriceConfig> baseline) {
    const config::PriceConfig& base = baseline ? *baseline : price;
    const std::lock_guard lock(caches_->mutex);
    auto& slot = caches_->targets[{route, provider, model}];
    if (!slot || !same_price(slot->price_, price) || !same_price(slot->baseline_, base)) {
        slot.reset(new TargetMetrics(state_, route, provider, model, price, base));
    }
    return slot;
}

std::shared_ptr<TargetMetrics> Metrics::unmatched() { return target(kNone, kNone, kNone, {}); }

std::shared_ptr<RouteMetrics> Metrics::route(const std::string& route) {
    const std::lock_guard lock(caches_->mutex);
    auto& slot = caches_->routes[route];
    if (!slot) slot.reset(new RouteMetrics(state_, route));
    return slot;
}

std::shared_ptr<ShadowTargetMetrics> Metrics::shadow_target(const std::string& route,
                                                            const std::string& provider,
                                                            ShadowCall call,
                                                            const config::PriceConfig& price) {
    const std::lock_guard lock(caches_->mutex);
    auto& slot = caches_->shadow_targets[{route, provider, call}];
    if (!slot || !same_price(slot->price_, price)) {
        slot.reset(new ShadowTargetMetrics(state_, route, provider, call, price));
    }
    return slot;
}

void Metrics::upstream_error(const std::string& provider, UpstreamErrorKind kind) {
    prometheus::Counter* counter = nullptr;
    {
        const std::lock_guard lock(caches_->mutex);
        auto it = caches_->provider_errors.find(provider);
        if (it == caches_->provider_errors.end()) {
            it = caches_->provider_errors
                     .emplace(provider, resolve_error_kinds(state_->upstream_errors, provider))
                     .first;
        }
        counter = it->second[static_cast<std::size_t>(kind)];
    }
    counter->Increment();
}

void Metrics::inflight_add(int delta) {
    state_->inflight_requests.Increment(static_cast<double>(delta));
}

void Metrics::config_reload(bool success) {
    (success ? state_->reload_success : state_->reload_failure).Increment();
}

void Metrics::shadow_request(const std::string& route_name, ShadowOutcome outcome) {
    route(route_name)->shadow_request(outcome);
}

void Metrics::judge_verdict(const std::string& route_name, Verdict verdict,
                            std::optional<double> score) {
    route(route_name)->judge_verdict(verdict, score);
}

void Metrics::set_pass_rate(const std::string& route_name, double pass_rate) {
    route(route_name)->set_pass_rate(pass_rate);
}

void Metrics::set_route_state(const std::string& route_name, RouteStateLabel state) {
    route(route_name)->set_route_state(state);
}

void Metrics::route_flip(const std::string& route_name, FlipTo to) {
    route(route_name)->route_flip(to);
}

void Metrics::retain_routes(const std::vector<std::string>& routes) {
    const std::set<std::string> keep(routes.begin(), routes.end());
    const std::lock_guard lock(caches_->mutex);
    for (const auto& [name, handle] : caches_->routes) {
        if (!keep.contains(name)) handle->clear_route_state();
    }
}

}  // namespace turnout::metrics
