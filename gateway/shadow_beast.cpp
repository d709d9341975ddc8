// The shadow loop: mirrored copies, judge calls, controllers, the store and the admin view.

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "gateway/anthropic.hpp"
#include "gateway/logging.hpp"
#include "gateway/runtime.hpp"
#include "gateway/background_call.hpp"
#include "gateway/shadow_runtime.hpp"
#include "gateway/upstream_body.hpp"
#include "routing/json_input.hpp"
#include "shadow/judge.hpp"

namespace turnout::gateway {
namespace {

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kStatsWindow = 200;  // shadow pairs kept for the side-by-side medians
constexpr int kShadowNice = 10;           // the shadow thread's scheduling priority (nice)

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// What identifies the evidence: changing any of these starts it afresh. The judge's newer
/// settings join only when they differ from their defaults, so that routes that do not use
/// them keep the evidence they had.
std::string fingerprint(const routing::RouteConfig& route, const std::string& template_text) {
    const auto& judge = route.judge;
    std::string print = fmt::format("candidate={}/{};judge={}/{};template={};pass_score={}",
                                    route.candidate->provider, route.candidate->model,
                                    judge.provider, judge.model,
                                    shadow::template_hash(template_text), judge.pass_score);
    if (judge.swap) print += ";swap=true";
    if (judge.max_answer_bytes != routing::JudgeConfig{}.max_answer_bytes) {
        print += fmt::format(";max_answer_bytes={}", judge.max_answer_bytes);
    }
    if (!judge.extra_body_json.empty()) {
        print += ";body=" + shadow::template_hash(judge.extra_body_json);
    }
    return print;
}

/// `body` (a JSON object) without the top-level fields that the object `fields_json` sets to
/// null: `judge.body`'s way to remove a field turnout would send (`temperature: null`). The
/// fields were merged by upstream_body like any provider's `body:`; only the removal is done
/// here.
std::string without_null_fields(std::string body, std::string_view fields_json) {
    rapidjson::Document fields;
    rapidjson::Document document;
    if (!routing::parse_json_input(fields_json, fields) || !fields.IsObject() ||
        !routing::parse_json_input(body, document) || !document.IsObject()) {
        return body;
    }
    bool removed = false;
    for (const auto& field : fields.GetObject()) {
        if (field.value.IsNull()) removed = document.RemoveMember(field.name) || removed;
    }
    return removed ? to_json(document) : body;
}

metrics::RouteStateLabel state_label(shadow::RouteState state) {
    switch (state) {
        case shadow::RouteState::shadowing: return metrics::RouteStateLabel::shadowing;
        case shadow::RouteState::ramping: return metrics::RouteStateLabel::ramping;
        case shadow::RouteState::promoted: return metrics::RouteStateLabel::promoted;
        case shadow::RouteState::rolled_back: return metrics::RouteStateLabel::rolled_back;
        case shadow::RouteState::pinned: return metrics::RouteStateLabel::pinned;
    }
    return metrics::RouteStateLabel::shadowing;
}

metrics::Verdict metrics_verdict(shadow::VerdictKind kind) {
    switch (kind) {
        case shadow::VerdictKind::pass: return metrics::Verdict::pass;
        case shadow::VerdictKind::fail: return metrics::Verdict::fail;
        case shadow::VerdictKind::error: return metrics::Verdict::error;
    }
    return metrics::Verdict::error;
}

double median(const std::deque<double>& values) {
    if (values.empty()) return 0.0;
    std::vector<double> sorted(values.begin(), values.end());
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    return sorted[sorted.size() / 2];
}

}  // namespace

Usage openai_usage(std::string_view body) {
    rapidjson::Document document;
    return routing::parse_json_input(body, document) ? openai_usage(document) : Usage{};
}

/// One non-streamed chat call made by the gateway itself (a mirrored copy or a judge call),
/// translated for an Anthropic provider.
asio::awaitable<Measured> background_call(CallPlan plan, std::string openai_body,
                                          std::string request_id, routing::Duration timeout) {
    // The provider's own deadline binds its background calls as it binds live ones: a hung
    // candidate must not hold a shadow slot for the whole route timeout.
    timeout = std::min(timeout, plan.provider.timeout);
    Measured measured;
    rapidjson::Document document;
    if (!routing::parse_json_input(openai_body, document) || !document.IsObject() ||
        !document.HasMember("model") ||
        !document["model"].IsString()) {
        measured.error = "request is not a chat request";
        co_return measured;
    }
    document.RemoveMember("stream_options");
    if (document.HasMember("stream")) document["stream"].SetBool(false);
    const std::string body_text = to_json(document);
    std::string error;
    std::string body = upstream_body(body_text, document, plan.target, plan.provider, error);
    if (!error.empty()) {
        measured.error = error;
        co_return measured;
    }
    if (plan.null_removes_field && !plan.target.extra_body_json.empty()) {
        body = without_null_fields(std::move(body), plan.target.extra_body_json);
    }
    auto request = make_upstream_request(nullptr, plan.provider, plan.target, "/chat/completions",
                                         std::move(body), plan.credential, request_id);
    const auto start = Clock::now();
    CallResult result = co_await call_upstream(plan.pool, std::move(request), start + timeout);
    measured.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    measured.ttft_ms = measured.latency_ms;  // a non-streamed answer arrives at once
    if (result.ec) {
        measured.error = std::string(to_string(classify_upstream_error(result.ec)));
        co_return measured;
    }
    if (result.status != 200) {
        measured.error = fmt::format("status {}", result.status);
        co_return measured;
    }
    if (plan.provider.kind == routing::ProviderKind::anthropic) {
        auto translated = anthropic::translate_response(result.body, request_id, plan.target.model);
        if (!translated.error.empty()) {
            measured.error = translated.error;
            co_return measured;
        }
        result.body = std::move(translated.body);
    }
    measured.ok = true;
    measured.usage = openai_usage(result.body);
    measured.text = std::move(result.body);
    co_return measured;
}

namespace {

/// Renders the prompt from `template_text`, asks the judge and parses its verdict.
asio::awaitable<JudgeReading> judge_once(CallPlan judge, std::string template_text,
                                         shadow::JudgeInput input, std::string request_id,
                                         routing::Duration timeout) {
    const std::string prompt =
        shadow::render_judge_prompt(template_text, input, shadow::random_boundary());
    Measured reply = co_await background_call(
        judge, shadow::judge_request_body(judge.target.model, prompt), std::move(request_id),
        timeout);
    JudgeReading reading;
    reading.usage = reply.usage;
    if (reply.ok) {
        reading.parsed = shadow::parse_judge_completion(reply.text);
    } else {
        reading.parsed.error = "judge call failed: " + reply.error;
    }
    co_return reading;
}

}  // namespace

/// The pair's verdict: one judge call, or with `judge.swap` two at once, the answers in both
/// orders (shadow::combine_swapped).
asio::awaitable<JudgeReading> judge_pair(CallPlan judge, routing::JudgeConfig config,
                                         std::string template_text, shadow::JudgeInput input,
                                         std::string request_id, routing::Duration timeout) {
    if (!config.swap) {
        co_return co_await judge_once(std::move(judge), std::move(template_text),
                                      std::move(input), request_id + "-judge", timeout);
    }
    using namespace asio::experimental::awaitable_operators;
    std::string swapped_template = shadow::swapped_judge_template(template_text);
    auto as_given = judge_once(judge, std::move(template_text), input, request_id + "-judge",
                               timeout);
    auto swapped = judge_once(judge, std::move(swapped_template), input,
                              request_id + "-judge-swapped", timeout);
    std::tuple<JudgeReading, JudgeReading> readings =
        co_await (std::move(as_given) && std::move(swapped));
    const JudgeReading& first = std::get<0>(readings);
    const JudgeReading& second = std::get<1>(readings);
    JudgeReading combined;
    combined.parsed = shadow::combine_swapped(first.parsed, second.parsed, config.pass_score);
    combined.usage = {first.usage.input + second.usage.input,
                      first.usage.output + second.usage.output};
    co_return combined;
}

/// The shadow-measured figures of one model of a route (for /admin/routes).
struct ShadowRuntime::SideStats {
    std::deque<double> latency_ms;
    std::deque<double> ttft_ms;
    std::uint64_t calls = 0;
    std::uint64_t output_tokens = 0;
    double cost_usd = 0;

    void add(const Measured& measured, const routing::PriceConfig& price) {
        latency_ms.push_back(measured.latency_ms);
        ttft_ms.push_back(measured.ttft_ms);
        if (latency_ms.size() > kStatsWindow) latency_ms.pop_front();
        if (ttft_ms.size() > kStatsWindow) ttft_ms.pop_front();
        ++calls;
        output_tokens += measured.usage.output;
        cost_usd += routing::cost_usd(price, measured.usage.input, measured.usage.output);
    }

    void write(Writer& writer) const {
        writer.StartObject();
        writer.Key("latency_ms_p50");
        writer.Double(median(latency_ms));
        writer.Key("ttft_ms_p50");
        writer.Double(median(ttft_ms));
        writer.Key("output_tokens");
        writer.Uint64(output_tokens);
        writer.Key("cost_usd");
        writer.Double(cost_usd);
        writer.Key("calls");
        writer.Uint64(calls);
        writer.Key("cost_per_1k_requests_usd");
        writer.Double(calls == 0 ? 0.0 : cost_usd / static_cast<double>(calls) * 1000.0);
        writer.EndObject();
    }
};

struct ShadowRuntime::Route {
    Route(const routing::RouteConfig& route, std::string print, shadow::Controller control)
        : config(route), fingerprint(std::move(print)), controller(std::move(control)) {}

    routing::RouteConfig config;
    std::string fingerprint;
    shadow::Controller controller;
    std::string template_text;
    std::shared_ptr<RouteChannel> channel = std::make_shared<RouteChannel>();
    std::shared_ptr<metrics::RouteMetrics> metrics;
    std::deque<ShadowJob> queue;
    unsigned inflight = 0;
    bool state_dirty = false;  ///< verdicts recorded since the state was last saved
    SideStats primary;
    SideStats candidate;
};

ShadowRuntime::ShadowRuntime(std::string state_path, metrics::Metrics* metrics)
    : metrics_(metrics) {
    shadow::StoreOptions options;
    // Verdict lines are written at once (a killed process loses none) and synced to disk
    // once a second with the dirty route states: an fsync per verdict costs the whole
    // machine I/O and CPU that live traffic needs (measured: p99 from 0.3 to 11 ms).
    options.sync_every_append = false;
    options.on_warning = [](const std::string& message) {
        log_event(gateway_log(), spdlog::level::warn, "state store", {{"problem", message}});
    };
    store_ = std::make_unique<shadow::StateStore>(std::move(state_path), std::move(options));
    view_.store(std::make_shared<const ShadowView>());
}

ShadowRuntime::~ShadowRuntime() { stop(); }

void ShadowRuntime::start() {
    asio::co_spawn(io_, tick_loop(), asio::detached);
    thread_ = std::thread([this] {
        // Background work yields the cores to live traffic when both want them: mirrored
        // copies and judge calls must never slow a live request.
        setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kShadowNice);
        auto guard = asio::make_work_guard(io_);
        io_.run();
    });
}

void ShadowRuntime::stop() {
    if (!thread_.joinable()) return;
    io_.stop();
    thread_.join();
    std::lock_guard lock(mutex_);
    stopped_ = true;
    pools_.clear();  // their sockets belong to io_, which is still alive here
    store_->sync_logs();
    for (auto& [name, route] : routes_) {
        store_->save_route_state(name, route->controller.to_json());
    }
}

void ShadowRuntime::configure(std::shared_ptr<const Snapshot> snapshot) {
    std::lock_guard lock(mutex_);
    const auto now = shadow::Clock::now();
    std::map<std::string, std::string> saved;
    if (!snapshot_) saved = store_->load_route_states();
    snapshot_ = snapshot;
    std::map<std::string, std::unique_ptr<Route>, std::less<>> next;
    std::vector<std::string> names;
    for (const auto& config : snapshot->config->routes) {
        if (!config.candidate || config.judge.provider.empty()) continue;
        std::string template_text;
        try {
            template_text = shadow::load_judge_template(config.judge);
        } catch (const std::exception& e) {
            log_event(gateway_log(), spdlog::level::err, "route not evaluated",
                      {{"route", config.name}, {"error", e.what()}});
            continue;
        }
        const std::string print = fingerprint(config, template_text);
        std::unique_ptr<Route> route;
        if (auto existing = routes_.find(config.name); existing != routes_.end()) {
            route = std::move(existing->second);
            route->controller.reconfigure(now, config, print);
            route->config = config;
            route->fingerprint = print;
        } else if (auto state = saved.find(config.name); state != saved.end()) {
            try {
                // Verdicts appended after the state's last save (a kill -9 comes between the
                // two) are replayed from the log.
                const shadow::VerdictLogTail log = [this, &config](std::size_t limit) {
                    return store_->latest_verdicts(config.name, limit);
                };
                route = std::make_unique<Route>(
                    config, print,
                    shadow::Controller::from_json(state->second, config, print, now, log));
                route->state_dirty = true;  // saved with the replayed verdicts at the next tick
            } catch (const std::exception& e) {
                log_event(gateway_log(), spdlog::level::warn, "stored route state ignored",
                          {{"route", config.name}, {"error", e.what()}});
            }
        }
        if (!route) {
            route = std::make_unique<Route>(config, print, shadow::Controller(config, print, now));
            // Saved before its first verdict, so that a crash before the first periodic save
            // still finds a state to replay the verdict log onto (Controller::from_json).
            store_->save_route_state(config.name, route->controller.to_json());
        }
        route->template_text = std::move(template_text);
        route->channel->capacity = config.shadow.max_inflight + config.shadow.queue;
        if (metrics_ != nullptr) {
            route->metrics = metrics_->route(config.name);
            route->metrics->set_thresholds(config.promotion.threshold,
                                           config.promotion.rollback_threshold);
            route->metrics->set_route_state(state_label(route->controller.state()));
        }
        handle_events(*route, now);
        names.push_back(config.name);
        next[config.name] = std::move(route);
    }
    routes_ = std::move(next);
    if (metrics_ != nullptr) metrics_->retain_routes(names);
    publish();
}

void ShadowRuntime::publish() {
    auto view = std::make_shared<ShadowView>();
    for (const auto& [name, route] : routes_) {
        view->states.set(name, {route->controller.candidate_share()});
        route->channel->mirror_rate = route->controller.mirror_rate();
        view->channels[name] = route->channel;
    }
    view_.store(std::move(view));
}

bool ShadowRuntime::offer(ShadowJob job) {
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
        std::lock_guard lock(mutex_);
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

void ShadowRuntime::pump(Route& route) {
    while (route.inflight < route.config.shadow.max_inflight && !route.queue.empty()) {
        ++route.inflight;
        // Posted, not spawned here: co_spawn may start the coroutine inline, and the caller
        // holds mutex_, which process() takes.
        asio::post(io_, [this, job = std::move(route.queue.front())]() mutable {
            asio::co_spawn(io_, process(std::move(job)), asio::detached);
        });
        route.queue.pop_front();
    }
}

std::shared_ptr<UpstreamPool> ShadowRuntime::pool_for(const routing::ProviderConfig& provider) {
    auto& pool = pools_[provider.name];
    if (!pool || !same_connection_settings(pool->provider(), provider)) {
        // The snapshot's TLS context: built (and its files read) when the config was loaded.
        const auto tls = snapshot_->tls_contexts.find(provider.name);
        pool = std::make_shared<UpstreamPool>(
            io_.get_executor(), provider,
            tls == snapshot_->tls_contexts.end() ? nullptr : tls->second,
            provider.max_connections);
    }
    return pool;
}

/// Releases a job's place in its route's budget however process() ends (an exception in a
/// detached coroutine would otherwise leak it and stall the route's shadow for good).
class ShadowRuntime::JobSlot {
public:
    JobSlot(ShadowRuntime& runtime, std::string route, std::shared_ptr<RouteChannel> channel)
        : runtime_(runtime), route_(std::move(route)), channel_(std::move(channel)) {}
    JobSlot(const JobSlot&) = delete;
    JobSlot& operator=(const JobSlot&) = delete;
    ~JobSlot() {
        std::lock_guard lock(runtime_.mutex_);
        channel_->pending.fetch_sub(1);
        if (runtime_.stopped_) return;  // the frame is being destroyed with io_: start nothing
        const auto found = runtime_.routes_.find(route_);
        // Only the incarnation that started the job counts it in flight.
        if (found == runtime_.routes_.end() || found->second->channel != channel_) return;
        --found->second->inflight;
        runtime_.pump(*found->second);
    }

private:
    ShadowRuntime& runtime_;
    std::string route_;
    std::shared_ptr<RouteChannel> channel_;
};

asio::awaitable<void> ShadowRuntime::process(ShadowJob job) {
    const JobSlot slot(*this, job.route, job.channel);
    CallPlan mirror;
    CallPlan judge;
    routing::RouteConfig config;
    std::string template_text;
    routing::PriceConfig primary_price;
    routing::PriceConfig candidate_price;
    {
        std::lock_guard lock(mutex_);
        const auto route = routes_.find(job.route);
        if (route == routes_.end()) co_return;
        config = route->second->config;
        template_text = route->second->template_text;
        const auto& cfg = *snapshot_->config;
        const routing::TargetConfig& other =
            job.served_by_candidate ? routing::serving_target(config) : *config.candidate;
        const auto plan_for = [&](const routing::TargetConfig& target) {
            CallPlan plan;
            plan.provider = *cfg.find_provider(target.provider);
            plan.target = target;
            const auto credential = snapshot_->provider_auth.find(target.provider);
            if (credential != snapshot_->provider_auth.end()) plan.credential = credential->second;
            plan.pool = pool_for(plan.provider);
            return plan;
        };
        mirror = plan_for(other);
        routing::TargetConfig judge_target;
        judge_target.provider = config.judge.provider;
        judge_target.model = config.judge.model;
        judge_target.extra_body_json = config.judge.extra_body_json;
        judge = plan_for(judge_target);
        judge.null_removes_field = true;
        primary_price = cfg.find_provider(routing::serving_target(config).provider)->price;
        candidate_price = cfg.find_provider(config.candidate->provider)->price;
    }

    Measured shadow = co_await background_call(mirror, job.request_body,
                                               job.request_id + "-shadow", config.timeout);
    Measured live;
    live.ok = true;
    live.text = job.live_body.empty() ? shadow::answer_text_from_stream(job.live_stream_payloads)
                                      : shadow::answer_text_from_openai(job.live_body);
    live.latency_ms = job.live_latency_ms;
    live.ttft_ms = job.live_ttft_ms;
    live.usage = {job.live_input_tokens, job.live_output_tokens};
    if (shadow.ok) shadow.text = shadow::answer_text_from_openai(shadow.text);
    const Measured& primary = job.served_by_candidate ? shadow : live;
    const Measured& candidate = job.served_by_candidate ? live : shadow;

    shadow::ParsedVerdict parsed;
    shadow::VerdictKind kind = shadow::VerdictKind::error;
    if (!shadow.ok) {
        // A candidate that fails in the shadow is a fail; a failed reference is no evidence.
        kind = job.served_by_candidate ? shadow::VerdictKind::error : shadow::VerdictKind::fail;
        parsed.reason = (job.served_by_candidate ? "primary failed: " : "candidate failed: ") +
                        shadow.error;
    } else {
        shadow::JudgeInput input{job.request_body, primary.text, candidate.text,
                                 config.judge.pass_score, config.judge.max_answer_bytes};
        JudgeReading verdict = co_await judge_pair(judge, config.judge, template_text,
                                                   std::move(input), job.request_id,
                                                   config.timeout);
        parsed = std::move(verdict.parsed);
        kind = shadow::classify(parsed, config.judge.pass_score);
        if (shadow::judge_disagrees(parsed, config.judge.pass_score)) {
            log_event(gateway_log(), spdlog::level::info, "judge pass flag disagrees with score",
                      {{"route", config.name}, {"request_id", job.request_id},
                       {"score", parsed.score}});
        }
        if (metrics_ != nullptr) {
            metrics_->shadow_target(config.name, judge.provider.name, metrics::ShadowCall::judge,
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

    // Record: the controller, the store, the metrics.
    std::lock_guard lock(mutex_);
    const auto found = routes_.find(job.route);
    if (found == routes_.end()) co_return;
    Route& route = *found->second;
    const auto now = shadow::Clock::now();
    route.controller.record_verdict(now, kind);
    if (kind != shadow::VerdictKind::error || shadow.ok) {
        route.primary.add(primary, primary_price);
        route.candidate.add(candidate, candidate_price);
    }
    rapidjson::StringBuffer out;
    Writer writer(out);
    writer.StartObject();
    writer.Key("time");
    writer.String(shadow::rfc3339(now));
    writer.Key("route");
    writer.String(config.name);
    writer.Key("seq");  // numbers the verdicts, so a restore replays the unsaved ones once
    writer.Uint64(route.controller.total_verdicts());
    writer.Key("request_id");
    writer.String(job.request_id);
    writer.Key("score");
    if (parsed.ok) {
        writer.Double(parsed.score);
    } else {
        writer.Null();
    }
    writer.Key("pass");
    writer.Bool(kind == shadow::VerdictKind::pass);
    writer.Key("verdict");
    writer.String(std::string(shadow::to_string(kind)));
    writer.Key("reason");
    writer.String(parsed.ok || parsed.error.empty() ? parsed.reason : parsed.error);
    writer.Key("diff_summary");
    writer.String(parsed.diff_summary);
    writer.Key("primary_latency_ms");
    writer.Double(primary.latency_ms);
    writer.Key("candidate_latency_ms");
    writer.Double(candidate.latency_ms);
    writer.Key("primary_output_tokens");
    writer.Uint64(primary.usage.output);
    writer.Key("candidate_output_tokens");
    writer.Uint64(candidate.usage.output);
    writer.Key("primary_cost_usd");
    writer.Double(routing::cost_usd(primary_price, primary.usage.input, primary.usage.output));
    writer.Key("candidate_cost_usd");
    writer.Double(routing::cost_usd(candidate_price, candidate.usage.input, candidate.usage.output));
    writer.EndObject();
    store_->append_verdict(config.name, std::string(out.GetString(), out.GetSize()));
    // Shadow spend is logged apart from live traffic (no access-log line: no client saw it).
    log_event(gateway_log(), spdlog::level::debug, "shadow pair judged",
              {{"route", config.name},
               {"request_id", job.request_id},
               {"shadow", true},
               {"mirror_target", mirror.target.provider + "/" + mirror.target.model},
               {"verdict", shadow::to_string(kind)},
               {"mirror_latency_ms", shadow.latency_ms},
               {"mirror_input_tokens", static_cast<std::int64_t>(shadow.usage.input)},
               {"mirror_output_tokens", static_cast<std::int64_t>(shadow.usage.output)}});
    if (route.metrics) {
        route.metrics->shadow_request(shadow.ok ? metrics::ShadowOutcome::sent
                                                : metrics::ShadowOutcome::error);
        route.metrics->judge_verdict(metrics_verdict(kind),
                                     parsed.ok ? std::optional<double>(parsed.score) : std::nullopt);
        const auto status = route.controller.status();
        route.metrics->set_pass_rate(status.evidence.pass_rate);
        route.metrics->set_samples(status.evidence.samples);
    }
    route.state_dirty = true;  // saved by the next tick (or at once by an event below)
    handle_events(route, now);
}

void ShadowRuntime::handle_events(Route& route, shadow::TimePoint now) {
    auto events = route.controller.take_events();
    if (events.empty()) return;
    for (const auto& event : events) {
        const auto& evidence = event.evidence;
        log_event(gateway_log(), spdlog::level::info, "route transition",
                  {{"route", route.config.name},
                   {"kind", shadow::to_string(event.kind)},
                   {"trigger", shadow::to_string(event.trigger)},
                   {"from", shadow::to_string(event.from)},
                   {"to", shadow::to_string(event.to)},
                   {"live", shadow::to_string(event.to_side)},
                   {"candidate_share", event.candidate_share},
                   {"reason", event.reason},
                   {"samples", static_cast<std::int64_t>(evidence.samples)},
                   {"pass_rate", evidence.pass_rate},
                   {"wilson_lower", evidence.wilson_lower},
                   {"sprt_llr", evidence.sprt_llr},
                   {"candidate_error_rate", evidence.candidate_error_rate}});
        const std::string event_json = shadow::to_json(event);
        rapidjson::StringBuffer out;
        Writer writer(out);
        writer.StartObject();
        writer.Key("route");
        writer.String(route.config.name);
        writer.Key("event");
        writer.RawValue(event_json.data(), event_json.size(), rapidjson::kObjectType);
        writer.EndObject();
        store_->append_event(std::string(out.GetString(), out.GetSize()));
        if (route.metrics && event.from_side != event.to_side) {
            route.metrics->route_flip(event.to_side == shadow::Side::candidate
                                          ? metrics::FlipTo::candidate
                                          : metrics::FlipTo::primary);
        }
    }
    if (route.metrics) route.metrics->set_route_state(state_label(route.controller.state()));
    store_->sync_logs();  // a transition and the verdicts behind it are durable at once
    store_->save_route_state(route.config.name, route.controller.to_json());
    route.state_dirty = false;
    (void)now;
    publish();
}

asio::awaitable<void> ShadowRuntime::tick_loop() {
    asio::steady_timer timer(io_);
    for (;;) {
        timer.expires_after(std::chrono::seconds(1));
        auto [ec] = co_await timer.async_wait(kToken);
        if (ec) co_return;
        tick_all();
    }
}

void ShadowRuntime::tick_all() {
    std::lock_guard lock(mutex_);
    const auto now = shadow::Clock::now();
    for (auto& [name, route] : routes_) {
        auto& channel = *route->channel;
        const auto ok = channel.candidate_ok.exchange(0);
        const auto errors = channel.candidate_errors.exchange(0);
        const auto primary = channel.primary_requests.exchange(0);
        const auto dropped = channel.dropped.exchange(0);
        for (std::uint64_t i = 0; route->metrics && i < dropped; ++i) {
            route->metrics->shadow_request(metrics::ShadowOutcome::dropped);
        }
        for (std::uint64_t i = 0; i < ok; ++i) route->controller.record_live_result(now, true, false);
        for (std::uint64_t i = 0; i < errors; ++i) {
            route->controller.record_live_result(now, true, true);
        }
        for (std::uint64_t i = 0; i < primary; ++i) {
            route->controller.record_live_result(now, false, false);
        }
        route->controller.tick(now);
        handle_events(*route, now);
    }
    store_->sync_logs();
    for (auto& [name, route] : routes_) {
        if (!route->state_dirty) continue;
        store_->save_route_state(name, route->controller.to_json());
        route->state_dirty = false;
    }
}

std::string ShadowRuntime::route_json(const Route& route) const {
    const auto status = route.controller.status();
    const auto& evidence = status.evidence;
    const auto& live = status.live_side == shadow::Side::candidate
                           ? *route.config.candidate
                           : routing::serving_target(route.config);
    rapidjson::StringBuffer out;
    Writer writer(out);
    writer.StartObject();
    writer.Key("name");
    writer.String(route.config.name);
    writer.Key("state");
    writer.String(std::string(shadow::to_string(status.state)));
    writer.Key("mode");
    writer.String(std::string(shadow::to_string(status.mode)));
    writer.Key("live_target");
    writer.String(live.provider + "/" + live.model);
    writer.Key("candidate_share");
    writer.Double(status.candidate_share);
    writer.Key("samples");
    writer.Uint(evidence.samples);
    writer.Key("passes");
    writer.Uint(evidence.passes);
    writer.Key("fails");
    writer.Uint(evidence.fails);
    writer.Key("errors");
    writer.Uint(evidence.errors);
    writer.Key("pass_rate");
    writer.Double(evidence.pass_rate);
    writer.Key("wilson_lower");
    writer.Double(evidence.wilson_lower);
    writer.Key("sprt_llr");
    writer.Double(evidence.sprt_llr);
    writer.Key("sprt_accept");
    writer.Double(status.sprt_accept);
    writer.Key("sprt_reject");
    writer.Double(status.sprt_reject);
    writer.Key("guarantee");
    writer.String(shadow::guarantee(route.config.promotion));
    writer.Key("window");
    writer.Uint(status.window);
    writer.Key("threshold");
    writer.Double(status.threshold);
    writer.Key("since");
    writer.String(shadow::rfc3339(status.since));
    writer.Key("total_verdicts");
    writer.Uint64(status.total_verdicts);
    writer.Key("primary");
    route.primary.write(writer);
    writer.Key("candidate");
    route.candidate.write(writer);
    writer.Key("projected_saving_per_1k_requests_usd");
    const auto per_1k = [](const SideStats& side) {
        return side.calls == 0 ? 0.0 : side.cost_usd / static_cast<double>(side.calls) * 1000.0;
    };
    writer.Double(per_1k(route.primary) - per_1k(route.candidate));
    writer.EndObject();
    return {out.GetString(), out.GetSize()};
}

std::string ShadowRuntime::routes_json() {
    std::lock_guard lock(mutex_);
    std::string json = "{\"routes\":[";
    bool first = true;
    for (const auto& config : snapshot_->config->routes) {
        const auto route = routes_.find(config.name);
        if (route == routes_.end()) continue;
        if (!first) json += ',';
        first = false;
        json += route_json(*route->second);
    }
    json += "]}";
    return json;
}

std::optional<std::string> ShadowRuntime::verdicts_json(const std::string& route,
                                                        std::size_t limit) {
    {
        std::lock_guard lock(mutex_);
        if (!routes_.contains(route)) return std::nullopt;
    }
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

ShadowRuntime::CommandResult ShadowRuntime::command(const std::string& name, Command command) {
    std::lock_guard lock(mutex_);
    CommandResult result;
    const auto found = routes_.find(name);
    if (found == routes_.end()) return result;
    result.known_route = true;
    Route& route = *found->second;
    const auto now = shadow::Clock::now();
    shadow::ManualOutcome outcome = shadow::ManualOutcome::refused;
    switch (command) {
        case Command::promote: outcome = route.controller.promote(now, "manual promote"); break;
        case Command::rollback: outcome = route.controller.rollback(now, "manual rollback"); break;
        case Command::pin_primary:
            outcome = route.controller.pin(now, shadow::Side::primary, "manual pin primary");
            break;
        case Command::pin_candidate:
            outcome = route.controller.pin(now, shadow::Side::candidate, "manual pin candidate");
            break;
        case Command::unpin: outcome = route.controller.unpin(now, "manual unpin"); break;
    }
    result.refused = outcome == shadow::ManualOutcome::refused;
    handle_events(route, now);
    result.json = route_json(route);
    return result;
}

}  // namespace turnout::gateway
