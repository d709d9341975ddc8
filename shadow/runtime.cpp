// The shadow loop: mirrored copies, judge calls, controllers, the store and the admin view,
// all on one thread of its own (runtime.hpp says who may call what from where).

#include "shadow/runtime.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <future>
#include <thread>

#include "base/logging.hpp"
#include "metrics/metrics.hpp"
#include "shadow/judge_call.hpp"
#include "shadow/runtime_report.hpp"
#include "shadow/store.hpp"
#include "upstream/client.hpp"

namespace turnout::shadow {
namespace {

using base::gateway_log;
using base::log_event;
using upstream::CallPlan;
using upstream::Measured;

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
constexpr int kShadowNice = 10;  // the shadow thread's scheduling priority (nice)

/// The live side of a pair as the judge and the stats see it.
Measured live_side(const ShadowJob& job) {
    Measured live;
    live.ok = true;
    live.text = job.live_body.empty() ? answer_text_from_stream(job.live_stream_payloads)
                                      : answer_text_from_openai(job.live_body);
    live.latency_ms = job.live_latency_ms;
    live.ttft_ms = job.live_ttft_ms;
    live.usage = {job.live_input_tokens, job.live_output_tokens};
    return live;
}

PairSide pair_side(const Measured& measured, const config::PriceConfig& price) {
    return {measured.latency_ms, measured.usage.output,
            config::cost_usd(price, measured.usage.input, measured.usage.output)};
}

}  // namespace

/// Everything below runs on `io_`'s thread, except construction, start(), and what stop()
/// does after joining it.
class ShadowRuntime::Impl {
  public:
    Impl(std::string state_path, metrics::Metrics* metrics);

    void configure(std::shared_ptr<const upstream::Providers> providers);
    void start();
    void stop();
    bool running() const { return running_.load(); }
    bool offer(ShadowJob job);
    std::optional<std::string> verdicts_json(const std::string& route, std::size_t limit);
    CommandResult command(const std::string& name, Command command);

    std::atomic<std::shared_ptr<const ShadowView>> view_;
    std::atomic<std::shared_ptr<const std::string>> routes_json_;

  private:
    struct Route {
        Route(const config::RouteConfig& route, std::string print, Controller control)
            : config(route), fingerprint(std::move(print)), controller(std::move(control)) {}

        config::RouteConfig config;
        std::string fingerprint;
        Controller controller;
        std::string template_text;
        std::shared_ptr<RouteChannel> channel = std::make_shared<RouteChannel>();
        std::shared_ptr<metrics::RouteMetrics> metrics;
        std::deque<ShadowJob> queue;
        unsigned inflight = 0;
        bool state_dirty = false;  ///< verdicts recorded since the state was last saved
        SideStats primary;
        SideStats candidate;
    };
    class JobSlot;

    std::unique_ptr<Route> restore_or_create(const config::RouteConfig& config,
                                             const std::string& print,
                                             std::map<std::string, std::string>& saved,
                                             TimePoint now);
    asio::awaitable<void> process(ShadowJob job);
    void record(Route& route, const ShadowJob& job, const CallPlan& mirror, const Measured& shadow,
                const Measured& live, const ParsedVerdict& parsed, VerdictKind kind);
    asio::awaitable<void> tick_loop();
    void pump(Route& route);
    void tick_all();
    void drain_channel(Route& route, TimePoint now);
    void handle_events(Route& route);
    void publish_view();
    void publish_admin();

    // Member order matters: io_ is destroyed first, and destroying it destroys the coroutine
    // frames of jobs in flight, whose JobSlot then needs routes_ still alive.
    std::unique_ptr<StateStore> store_;
    metrics::Metrics* metrics_;
    std::thread thread_;
    std::atomic<bool> running_{false};
    bool stopped_ = false;  ///< no new work once stop() began (read after the thread joined)
    std::shared_ptr<const upstream::Providers> providers_;
    std::map<std::string, std::unique_ptr<Route>, std::less<>> routes_;
    asio::io_context io_{1};
    upstream::Client client_{io_.get_executor()};

    friend class ShadowRuntime;
};

ShadowRuntime::Impl::Impl(std::string state_path, metrics::Metrics* metrics) : metrics_(metrics) {
    StoreOptions options;
    // Verdict lines are written at once (a killed process loses none) and synced to disk
    // once a second with the dirty route states: an fsync per verdict costs the whole
    // machine I/O and CPU that live traffic needs (measured: p99 from 0.3 to 11 ms).
    options.sync_every_append = false;
    options.on_warning = [](const std::string& message) {
        log_event(gateway_log(), spdlog::level::warn, "state store", {{"problem", message}});
    };
    store_ = std::make_unique<StateStore>(std::move(state_path), std::move(options));
    view_.store(std::make_shared<const ShadowView>());
    routes_json_.store(std::make_shared<const std::string>(R"({"routes":[]})"));
}

void ShadowRuntime::Impl::start() {
    running_ = true;
    asio::co_spawn(io_, tick_loop(), asio::detached);
    thread_ = std::thread([this] {
        // Background work yields the cores to live traffic when both want them: mirrored
        // copies and judge calls must never slow a live request.
        setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kShadowNice);
        auto guard = asio::make_work_guard(io_);
        io_.run();
    });
}

void ShadowRuntime::Impl::stop() {
    if (stopped_) return;
    running_ = false;
    if (thread_.joinable()) {
        io_.stop();
        thread_.join();
    }
    stopped_ = true;
    client_.clear();  // their sockets belong to io_, which is still alive here
    store_->sync_logs();
    for (auto& [name, route] : routes_) {
        store_->save_route_state(name, route->controller.to_json());
    }
}

std::unique_ptr<ShadowRuntime::Impl::Route> ShadowRuntime::Impl::restore_or_create(
    const config::RouteConfig& config, const std::string& print,
    std::map<std::string, std::string>& saved, TimePoint now) {
    if (auto existing = routes_.find(config.name); existing != routes_.end()) {
        std::unique_ptr<Route> route = std::move(existing->second);
        route->controller.reconfigure(now, config, print);
        route->config = config;
        route->fingerprint = print;
        return route;
    }
    if (auto state = saved.find(config.name); state != saved.end()) {
        try {
            // Verdicts appended after the state's last save (a kill -9 comes between the
            // two) are replayed from the log.
            const VerdictLogTail log = [this, &config](std::size_t limit) {
                return store_->latest_verdicts(config.name, limit);
            };
            auto route = std::make_unique<Route>(
                config, print, Controller::from_json(state->second, config, print, now, log));
            route->state_dirty = true;  // saved with the replayed verdicts at the next tick
            return route;
        } catch (const std::exception& e) {
            log_event(gateway_log(), spdlog::level::warn, "stored route state ignored",
                      {{"route", config.name}, {"error", e.what()}});
        }
    }
    auto route = std::make_unique<Route>(config, print, Controller(config, print, now));
    // Saved before its first verdict, so that a crash before the first periodic save still
    // finds a state to replay the verdict log onto (Controller::from_json).
    store_->save_route_state(config.name, route->controller.to_json());
    return route;
}

void ShadowRuntime::Impl::configure(std::shared_ptr<const upstream::Providers> providers) {
    const auto now = Clock::now();
    std::map<std::string, std::string> saved;
    if (!providers_) saved = store_->load_route_states();
    providers_ = providers;
    client_.update(providers);
    std::map<std::string, std::unique_ptr<Route>, std::less<>> next;
    std::vector<std::string> names;
    for (const auto& config : providers->config().routes) {
        if (!config.candidate || config.judge.provider.empty()) continue;
        std::string template_text;
        try {
            template_text = load_judge_template(config.judge);
        } catch (const std::exception& e) {
            log_event(gateway_log(), spdlog::level::err, "route not evaluated",
                      {{"route", config.name}, {"error", e.what()}});
            continue;
        }
        auto route =
            restore_or_create(config, evidence_fingerprint(config, template_text), saved, now);
        route->template_text = std::move(template_text);
        route->channel->capacity = config.shadow.max_inflight + config.shadow.queue;
        if (metrics_ != nullptr) {
            route->metrics = metrics_->route(config.name);
            route->metrics->set_thresholds(config.promotion.threshold,
                                           config.promotion.rollback_threshold);
            route->metrics->set_route_state(state_label(route->controller.state()));
        }
        handle_events(*route);
        names.push_back(config.name);
        next[config.name] = std::move(route);
    }
    routes_ = std::move(next);
    if (metrics_ != nullptr) metrics_->retain_routes(names);
    publish_view();
    publish_admin();
}

/// The live path's view: which side serves each route, and how much to mirror.
void ShadowRuntime::Impl::publish_view() {
    auto view = std::make_shared<ShadowView>();
    for (const auto& [name, route] : routes_) {
        view->states.set(name, {route->controller.candidate_share()});
        route->channel->mirror_rate = route->controller.mirror_rate();
        view->channels[name] = route->channel;
    }
    view_.store(std::move(view));
}

/// The admin view, in the config's route order: read by admin calls without waiting for
/// this thread (which may be in an fdatasync).
void ShadowRuntime::Impl::publish_admin() {
    std::string json = "{\"routes\":[";
    bool first = true;
    for (const auto& config : providers_->config().routes) {
        const auto found = routes_.find(config.name);
        if (found == routes_.end()) continue;
        if (!first) json += ',';
        first = false;
        const Route& route = *found->second;
        json += route_json(route.config, route.controller, route.primary, route.candidate);
    }
    json += "]}";
    routes_json_.store(std::make_shared<const std::string>(std::move(json)));
}

bool ShadowRuntime::Impl::offer(ShadowJob job) {
    const auto view = view_.load();
    const auto channel = view->channels.find(job.route);
    if (channel == view->channels.end()) return false;
    if (channel->second->pending.fetch_add(1) >= channel->second->capacity.load()) {
        channel->second->pending.fetch_sub(1);
        channel->second->dropped.fetch_add(1);
        return false;
    }
    job.channel = channel->second;
    asio::post(io_, [this, job = std::move(job)]() mutable {
        const auto route = routes_.find(job.route);
        if (route == routes_.end() || route->second->channel != job.channel) {
            job.channel->pending.fetch_sub(1);  // removed (or replaced) by a reload meanwhile
            return;
        }
        route->second->queue.push_back(std::move(job));
        pump(*route->second);
    });
    return true;
}

void ShadowRuntime::Impl::pump(Route& route) {
    while (route.inflight < route.config.shadow.max_inflight && !route.queue.empty()) {
        ++route.inflight;
        // Posted, not spawned here: co_spawn may start the coroutine inline, inside a JobSlot
        // destructor that is still updating this route.
        asio::post(io_, [this, job = std::move(route.queue.front())]() mutable {
            asio::co_spawn(io_, process(std::move(job)), asio::detached);
        });
        route.queue.pop_front();
    }
}

/// Releases a job's place in its route's budget however process() ends (an exception in a
/// detached coroutine would otherwise leak it and stall the route's shadow for good).
class ShadowRuntime::Impl::JobSlot {
  public:
    JobSlot(Impl& runtime, std::string route, std::shared_ptr<RouteChannel> channel)
        : runtime_(runtime), route_(std::move(route)), channel_(std::move(channel)) {}
    JobSlot(const JobSlot&) = delete;
    JobSlot& operator=(const JobSlot&) = delete;
    ~JobSlot() {
        channel_->pending.fetch_sub(1);
        if (runtime_.stopped_) return;  // the frame is being destroyed with io_: start nothing
        const auto found = runtime_.routes_.find(route_);
        // Only the incarnation that started the job counts it in flight.
        if (found == runtime_.routes_.end() || found->second->channel != channel_) return;
        --found->second->inflight;
        runtime_.pump(*found->second);
    }

  private:
    Impl& runtime_;
    std::string route_;
    std::shared_ptr<RouteChannel> channel_;
};

asio::awaitable<void> ShadowRuntime::Impl::process(ShadowJob job) {
    const JobSlot slot(*this, job.route, job.channel);
    const auto found = routes_.find(job.route);
    if (found == routes_.end()) co_return;
    // Copies: a reload may replace the route while the calls below are in flight.
    const config::RouteConfig config = found->second->config;
    const std::string template_text = found->second->template_text;
    const CallPlan mirror = client_.plan_for(
        job.served_by_candidate ? routing::serving_target(config) : *config.candidate);
    CallPlan judge = client_.plan_for(upstream::judge_target(config.judge));
    judge.null_removes_field = true;

    Measured shadow = co_await upstream::background_call(
        mirror, job.request_body, job.request_id + "-shadow", config.timeout);
    if (shadow.ok) shadow.text = answer_text_from_openai(shadow.text);
    const Measured live = live_side(job);
    ParsedVerdict parsed;
    VerdictKind kind = VerdictKind::error;
    if (!shadow.ok) {
        // A candidate that fails in the shadow is a fail; a failed reference is no evidence.
        kind = job.served_by_candidate ? VerdictKind::error : VerdictKind::fail;
        parsed.reason =
            (job.served_by_candidate ? "primary failed: " : "candidate failed: ") + shadow.error;
    } else {
        const Measured& primary = job.served_by_candidate ? shadow : live;
        const Measured& candidate = job.served_by_candidate ? live : shadow;
        JudgeInput input{job.request_body, primary.text, candidate.text, config.judge.pass_score,
                         config.judge.max_answer_bytes};
        JudgeReading verdict = co_await judge_pair(
            judge, config.judge, template_text, std::move(input), job.request_id, config.timeout);
        parsed = std::move(verdict.parsed);
        kind = classify(parsed, config.judge.pass_score);
        if (judge_disagrees(parsed, config.judge.pass_score)) {
            log_event(
                gateway_log(), spdlog::level::info, "judge pass flag disagrees with score",
                {{"route", config.name}, {"request_id", job.request_id}, {"score", parsed.score}});
        }
        if (metrics_ != nullptr) {
            metrics_
                ->shadow_target(config.name, judge.provider.name, metrics::ShadowCall::judge,
                                judge.provider.price)
                ->tokens(verdict.usage.input, verdict.usage.output);
        }
    }
    if (metrics_ != nullptr) {
        auto spend = metrics_->shadow_target(config.name, mirror.provider.name,
                                             metrics::ShadowCall::mirror, mirror.provider.price);
        spend->duration(shadow.latency_ms / 1000.0);
        spend->tokens(shadow.usage.input, shadow.usage.output);
    }
    const auto route = routes_.find(job.route);
    if (route != routes_.end()) record(*route->second, job, mirror, shadow, live, parsed, kind);
}

/// The verdict into the controller, the store, the metrics and the admin view.
void ShadowRuntime::Impl::record(Route& route, const ShadowJob& job, const CallPlan& mirror,
                                 const Measured& shadow, const Measured& live,
                                 const ParsedVerdict& parsed, VerdictKind kind) {
    const config::RouteConfig& config = route.config;
    const Measured& primary = job.served_by_candidate ? shadow : live;
    const Measured& candidate = job.served_by_candidate ? live : shadow;
    const auto& cfg = providers_->config();
    const auto& primary_price = cfg.find_provider(routing::serving_target(config).provider)->price;
    const auto& candidate_price = cfg.find_provider(config.candidate->provider)->price;
    const auto now = Clock::now();
    route.controller.record_verdict(now, kind);
    if (kind != VerdictKind::error || shadow.ok) {
        route.primary.add(primary.latency_ms, primary.ttft_ms, primary.usage.input,
                          primary.usage.output, primary_price);
        route.candidate.add(candidate.latency_ms, candidate.ttft_ms, candidate.usage.input,
                            candidate.usage.output, candidate_price);
    }
    VerdictLine line;
    line.time = now;
    line.route = config.name;
    line.seq = route.controller.total_verdicts();
    line.request_id = job.request_id;
    line.parsed = &parsed;
    line.kind = kind;
    line.primary = pair_side(primary, primary_price);
    line.candidate = pair_side(candidate, candidate_price);
    store_->append_verdict(config.name, verdict_line(line));
    // Shadow spend is logged apart from live traffic (no access-log line: no client saw it).
    log_event(gateway_log(), spdlog::level::debug, "shadow pair judged",
              {{"route", config.name},
               {"request_id", job.request_id},
               {"shadow", true},
               {"mirror_target", mirror.target.provider + "/" + mirror.target.model},
               {"verdict", to_string(kind)},
               {"mirror_latency_ms", shadow.latency_ms},
               {"mirror_input_tokens", static_cast<std::int64_t>(shadow.usage.input)},
               {"mirror_output_tokens", static_cast<std::int64_t>(shadow.usage.output)}});
    if (route.metrics) {
        route.metrics->shadow_request(shadow.ok ? metrics::ShadowOutcome::sent
                                                : metrics::ShadowOutcome::error);
        route.metrics->judge_verdict(
            metrics_verdict(kind), parsed.ok ? std::optional<double>(parsed.score) : std::nullopt);
        const auto status = route.controller.status();
        route.metrics->set_pass_rate(status.evidence.pass_rate);
        route.metrics->set_samples(status.evidence.samples);
    }
    route.state_dirty = true;  // saved by the next tick (or at once by an event below)
    handle_events(route);
    publish_admin();
}

void ShadowRuntime::Impl::handle_events(Route& route) {
    auto events = route.controller.take_events();
    if (events.empty()) return;
    for (const auto& event : events) {
        const auto& evidence = event.evidence;
        log_event(gateway_log(), spdlog::level::info, "route transition",
                  {{"route", route.config.name},
                   {"kind", to_string(event.kind)},
                   {"trigger", to_string(event.trigger)},
                   {"from", to_string(event.from)},
                   {"to", to_string(event.to)},
                   {"live", to_string(event.to_side)},
                   {"candidate_share", event.candidate_share},
                   {"reason", event.reason},
                   {"samples", static_cast<std::int64_t>(evidence.samples)},
                   {"pass_rate", evidence.pass_rate},
                   {"wilson_lower", evidence.wilson_lower},
                   {"sprt_llr", evidence.sprt_llr},
                   {"candidate_error_rate", evidence.candidate_error_rate}});
        store_->append_event(event_line(route.config.name, event));
        if (route.metrics && event.from_side != event.to_side) {
            route.metrics->route_flip(event.to_side == Side::candidate ? metrics::FlipTo::candidate
                                                                       : metrics::FlipTo::primary);
        }
    }
    if (route.metrics) route.metrics->set_route_state(state_label(route.controller.state()));
    store_->sync_logs();  // a transition and the verdicts behind it are durable at once
    store_->save_route_state(route.config.name, route.controller.to_json());
    route.state_dirty = false;
    publish_view();  // the admin view: by the caller, once it is done with the route
}

asio::awaitable<void> ShadowRuntime::Impl::tick_loop() {
    asio::steady_timer timer(io_);
    for (;;) {
        timer.expires_after(std::chrono::seconds(1));
        auto [ec] = co_await timer.async_wait(kToken);
        if (ec) co_return;
        tick_all();
    }
}

/// The live outcomes counted since the last tick, into the route's controller.
void ShadowRuntime::Impl::drain_channel(Route& route, TimePoint now) {
    auto& channel = *route.channel;
    const auto ok = channel.candidate_ok.exchange(0);
    const auto errors = channel.candidate_errors.exchange(0);
    const auto primary = channel.primary_requests.exchange(0);
    const auto dropped = channel.dropped.exchange(0);
    for (std::uint64_t i = 0; route.metrics && i < dropped; ++i) {
        route.metrics->shadow_request(metrics::ShadowOutcome::dropped);
    }
    for (std::uint64_t i = 0; i < ok; ++i) route.controller.record_live_result(now, true, false);
    for (std::uint64_t i = 0; i < errors; ++i) route.controller.record_live_result(now, true, true);
    for (std::uint64_t i = 0; i < primary; ++i) {
        route.controller.record_live_result(now, false, false);
    }
}

void ShadowRuntime::Impl::tick_all() {
    const auto now = Clock::now();
    for (auto& [name, route] : routes_) {
        drain_channel(*route, now);
        route->controller.tick(now);
        handle_events(*route);
    }
    store_->sync_logs();
    for (auto& [name, route] : routes_) {
        if (!route->state_dirty) continue;
        store_->save_route_state(name, route->controller.to_json());
        route->state_dirty = false;
    }
    publish_admin();
}

std::optional<std::string> ShadowRuntime::Impl::verdicts_json(const std::string& route,
                                                              std::size_t limit) {
    if (!routes_.contains(route)) return std::nullopt;
    std::string json = "{\"verdicts\":[";
    bool first = true;
    for (const auto& line : store_->latest_verdicts(route, limit)) {
        if (!first) json += ',';
        first = false;
        json += line;
    }
    json += "]}";
    return json;
}

ShadowRuntime::CommandResult ShadowRuntime::Impl::command(const std::string& name,
                                                          Command command) {
    CommandResult result;
    const auto found = routes_.find(name);
    if (found == routes_.end()) return result;
    result.known_route = true;
    Route& route = *found->second;
    const auto now = Clock::now();
    ManualOutcome outcome = ManualOutcome::refused;
    switch (command) {
        case Command::promote:
            outcome = route.controller.promote(now, "manual promote");
            break;
        case Command::rollback:
            outcome = route.controller.rollback(now, "manual rollback");
            break;
        case Command::pin_primary:
            outcome = route.controller.pin(now, Side::primary, "manual pin primary");
            break;
        case Command::pin_candidate:
            outcome = route.controller.pin(now, Side::candidate, "manual pin candidate");
            break;
        case Command::unpin:
            outcome = route.controller.unpin(now, "manual unpin");
            break;
    }
    result.refused = outcome == ManualOutcome::refused;
    handle_events(route);
    publish_admin();
    result.json = route_json(route.config, route.controller, route.primary, route.candidate);
    return result;
}

// --- ShadowRuntime: the interface, each call on the thread runtime.hpp promises -------------

ShadowRuntime::ShadowRuntime(std::string state_path, metrics::Metrics* metrics)
    : impl_(std::make_unique<Impl>(std::move(state_path), metrics)) {}

ShadowRuntime::~ShadowRuntime() { stop(); }

void ShadowRuntime::start() { impl_->start(); }
void ShadowRuntime::stop() { impl_->stop(); }

void ShadowRuntime::configure(std::shared_ptr<const upstream::Providers> providers) {
    if (!impl_->running()) {
        impl_->configure(std::move(providers));
        return;
    }
    std::promise<void> applied;
    auto done = applied.get_future();
    asio::post(impl_->io_, [this, &applied, providers = std::move(providers)]() mutable {
        try {
            impl_->configure(std::move(providers));
            applied.set_value();
        } catch (...) {
            applied.set_exception(std::current_exception());
        }
    });
    done.get();  // rethrows what configure threw, on the caller's thread
}

std::shared_ptr<const ShadowView> ShadowRuntime::view() const { return impl_->view_.load(); }

bool ShadowRuntime::offer(ShadowJob job) { return impl_->offer(std::move(job)); }

std::string ShadowRuntime::routes_json() const { return *impl_->routes_json_.load(); }

asio::awaitable<std::optional<std::string>> ShadowRuntime::verdicts_json(std::string route,
                                                                         std::size_t limit) {
    Impl* impl = impl_.get();
    auto read = [impl, route = std::move(route),
                 limit]() -> asio::awaitable<std::optional<std::string>> {
        co_return impl->verdicts_json(route, limit);
    };
    co_return co_await asio::co_spawn(impl->io_, std::move(read), asio::use_awaitable);
}

asio::awaitable<ShadowRuntime::CommandResult> ShadowRuntime::command(std::string route,
                                                                     Command command) {
    Impl* impl = impl_.get();
    auto apply = [impl, route = std::move(route), command]() -> asio::awaitable<CommandResult> {
        co_return impl->command(route, command);
    };
    co_return co_await asio::co_spawn(impl->io_, std::move(apply), asio::use_awaitable);
}

}  // namespace turnout::shadow
