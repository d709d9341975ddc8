// The API: authentication, the route decision, attempts with retries and fallbacks, whole
// answers, and the hand-over of sampled pairs to the shadow.

#include <rapidjson/document.h>

#include <algorithm>
#include <random>

#include "base/json_input.hpp"
#include "base/logging.hpp"
#include "gateway/session.hpp"
#include "protocol/upstream_body.hpp"
#include "routing/sampling.hpp"

namespace turnout::gateway {
namespace {

using base::gateway_log;
using base::log_event;
using shadow::RouteChannel;
using shadow::ShadowJob;
using upstream::CircuitBreaker;
using upstream::classify_upstream_error;
using upstream::ConnectionPtr;
using upstream::exchange_head;
using upstream::HeadExchange;
using upstream::make_upstream_request;
using upstream::UpstreamFailure;
using upstream::UpstreamPool;

constexpr std::uint64_t kMaxUpstreamBody = 64ull << 20;  // non-streamed answers, read whole

bool retryable_status(unsigned status) { return status >= 500 || status == 429; }

}  // namespace

void copy_response_headers(const http::fields& from, http::fields& to) {
    const protocol::ConnectionTokens connection = upstream::connection_tokens(from);
    for (const auto& field : from) {
        if (protocol::forward_response_header(field.name_string(), connection)) {
            to.insert(field.name_string(), field.value());
        }
    }
}

metrics::UpstreamErrorKind metrics_kind(UpstreamFailure failure) {
    switch (failure) {
        case UpstreamFailure::connect:
            return metrics::UpstreamErrorKind::connect;
        case UpstreamFailure::timeout:
            return metrics::UpstreamErrorKind::timeout;
        case UpstreamFailure::reset:
            return metrics::UpstreamErrorKind::reset;
        case UpstreamFailure::tls:
            return metrics::UpstreamErrorKind::tls;
        case UpstreamFailure::protocol:
            return metrics::UpstreamErrorKind::protocol;
    }
    return metrics::UpstreamErrorKind::protocol;
}

asio::awaitable<bool> Session::handle_api(Request& request, RequestRecord& record) {
    static constexpr std::string_view kProxied[] = {"/v1/chat/completions", "/v1/completions",
                                                    "/v1/embeddings"};
    if (!authenticate(request, record)) {
        co_return co_await send_error(errc::unauthorized, "invalid API key", record, false);
    }
    if (record.path == "/v1/models") {
        if (request.method() != http::verb::get) {
            co_return co_await send_error(errc::method_not_allowed, "use GET", record, false);
        }
        co_return co_await send_json(200, snapshot_->models_json, record);
    }
    for (const std::string_view path : kProxied) {
        if (record.path != path) continue;
        if (request.method() != http::verb::post) {
            co_return co_await send_error(errc::method_not_allowed, "use POST", record, false);
        }
        co_return co_await proxy(request, path.substr(3), record);  // drop "/v1"
    }
    co_return co_await send_error(errc::not_found, "unknown path " + record.path, record, false);
}

/// Client keys (`keys:`), as `Authorization: Bearer` or `x-api-key`. The key's name, never
/// the key, goes on to routing and the log.
bool Session::authenticate(const Request& request, RequestRecord& record) {
    const auto& keys = *snapshot_->keys;
    if (!keys.enabled()) return true;
    std::string_view presented = routing::bearer_token(request[http::field::authorization]);
    if (presented.empty()) presented = request["x-api-key"];
    const auto name = keys.authenticate(presented);
    if (!name) return false;
    record.key_name = std::string(*name);
    return true;
}

/// The one place a proxied request's whole answer is written: what forward() came to.
asio::awaitable<bool> Session::proxy(Request& request, std::string_view suffix,
                                     RequestRecord& record) {
    std::shared_ptr<RouteChannel> channel;
    Attempt outcome = co_await forward(request, suffix, record, channel);
    const bool keep =
        outcome.answer ? co_await send_response(*outcome.answer, record) : outcome.keep_alive;
    if (channel) after_live_answer(request, *channel, record);
    co_return keep;
}

/// Parses the request for routing, decides the route, and tries its targets in order (with
/// retries and backoff) until one answers or the route's deadline passes.
asio::awaitable<Attempt> Session::forward(const Request& request, std::string_view suffix,
                                          RequestRecord& record,
                                          std::shared_ptr<RouteChannel>& channel) {
    rapidjson::Document document;
    // Bounded depth (the body is re-serialised recursively when the model changes) and no
    // duplicate keys (turnout and the upstream must read the same `model`).
    const auto parsed = base::parse_json_input(request.body(), document);
    if (!parsed || !document.IsObject()) {
        const std::string reason =
            parsed ? "request body is not a JSON object"
                   : "request body is not acceptable: " + std::string(base::describe(parsed.error));
        log_event(gateway_log(), spdlog::level::warn, "rejected request body",
                  {{"request_id", record.request_id}, {"reason", reason}});
        co_return Attempt::answered(error_response(errc::invalid_json, reason));
    }
    const auto model_member = document.FindMember("model");
    if (model_member == document.MemberEnd() || !model_member->value.IsString()) {
        co_return Attempt::answered(
            error_response(errc::missing_model, "request has no string 'model'"));
    }
    const std::string_view model(model_member->value.GetString(),
                                 model_member->value.GetStringLength());
    const auto stream_member = document.FindMember("stream");
    record.stream = stream_member != document.MemberEnd() && stream_member->value.IsBool() &&
                    stream_member->value.GetBool();
    if (record.stream && document.HasMember("stream_options") &&
        document["stream_options"].IsObject() &&
        document["stream_options"].HasMember("include_usage") &&
        document["stream_options"]["include_usage"].IsBool()) {
        record.include_usage = document["stream_options"]["include_usage"].GetBool();
    }

    std::vector<std::pair<std::string_view, std::string_view>> headers;
    for (const auto& field : request) headers.emplace_back(field.name_string(), field.value());
    routing::RequestFacts facts;
    facts.model = model;
    facts.request_id = record.request_id;
    facts.request_id_from_client = record.request_id_from_client;
    facts.key_name = record.key_name;
    facts.headers = &headers;
    const auto view = worker_.shared.shadow ? worker_.shared.shadow->view() : nullptr;
    static const routing::RouteStates kNoStates;
    const auto decision = snapshot_->routes->decide(facts, view ? view->states : kNoStates);
    if (!decision) {
        co_return Attempt::answered(error_response(
            errc::model_not_found, "no route for model '" + std::string(model) + "'"));
    }
    const config::RouteConfig& route = *decision->route;
    record.route = route.name;
    record.serving_candidate = decision->serving_candidate;
    record.decided_target = decision->target.provider + "/" + decision->target.model;
    if (view) {
        const auto found = view->channels.find(route.name);
        if (found != view->channels.end()) channel = found->second;
    }
    if (channel && suffix == "/chat/completions") {
        const double rate = channel->mirror_rate.load();
        record.capture =
            rate > 0 && routing::sampled(record.request_id, rate, "shadow:" + route.name);
        if (record.capture && request.body().size() > kMaxShadowBytes) {
            record.capture = false;
            channel->dropped.fetch_add(1);
        }
    }

    std::vector<config::TargetConfig> chain{decision->target};
    chain.insert(chain.end(), decision->fallbacks.begin(), decision->fallbacks.end());
    const auto route_deadline = record.start + route.timeout;
    Attempt last;
    last.failure = UpstreamFailure::timeout;  // what remains when the deadline stops us first
    for (const auto& target : chain) {
        for (std::uint32_t retry = 0; retry <= route.retries.attempts; ++retry) {
            if (retry > 0) {
                // Exponential backoff with full jitter, never past the route's deadline.
                thread_local std::mt19937_64 rng{std::random_device{}()};
                const auto cap = route.retries.backoff * (1u << std::min(retry - 1, 10u));
                const auto delay = config::Duration(std::uniform_int_distribution<std::int64_t>(
                    cap.count() / 2, std::max<std::int64_t>(cap.count(), 1))(rng));
                if (Clock::now() + delay >= route_deadline) break;
                asio::steady_timer pause(stream_.get_executor(), delay);
                co_await pause.async_wait(kToken);
            }
            if (Clock::now() >= route_deadline) break;
            last =
                co_await attempt(request, document, route, target, suffix, route_deadline, record);
            if (last.result == Attempt::Result::delivered || last.circuit_open) break;
        }
        if (last.result == Attempt::Result::delivered) break;
    }
    if (last.result != Attempt::Result::delivered) settle_failure(last);
    co_return last;
}

/// Feeds the route's controller (live outcomes) and hands a sampled pair to the shadow.
void Session::after_live_answer(const Request& request, RouteChannel& channel,
                                RequestRecord& record) {
    const bool failed = record.status >= 500 || !record.upstream_failure.empty();
    if (record.serving_candidate) {
        (failed ? channel.candidate_errors : channel.candidate_ok).fetch_add(1);
    } else {
        channel.primary_requests.fetch_add(1);
    }
    if (record.capture_skipped) channel.dropped.fetch_add(1);
    // Only answers that succeeded, arrived whole, were not too big to keep, and came from the
    // side the route chose (a fallback's answer is no evidence about primary or candidate).
    if (!record.capture || record.status != 200 || record.client_gone || failed ||
        record.target != record.decided_target) {
        return;
    }
    ShadowJob job;
    job.route = record.route;
    job.request_id = record.request_id;
    job.request_body = request.body();
    job.served_by_candidate = record.serving_candidate;
    job.live_body = std::move(record.captured_body);
    job.live_stream_payloads = std::move(record.captured_payloads);
    job.live_latency_ms = seconds_between(record.start, Clock::now()) * 1000.0;
    job.live_ttft_ms =
        record.first_byte ? seconds_between(record.start, *record.first_byte) * 1000.0 : 0.0;
    job.live_input_tokens = record.input_tokens;
    job.live_output_tokens = record.output_tokens;
    worker_.shared.shadow->offer(std::move(job));
}

/// Nothing answered well: the last upstream answer is passed on (a 429 keeps its
/// retry-after), or the gateway answers 502/503/504 itself.
void Session::settle_failure(Attempt& last) {
    last.result = Attempt::Result::delivered;
    if (last.answer) return;
    if (last.circuit_open) {
        last.answer = unavailable_response(
            errc::circuit_open, "upstream circuit open after repeated failures; retry later",
            last.retry_after);
    } else if (last.failure == UpstreamFailure::timeout) {
        last.answer = error_response(errc::upstream_timeout, "upstream timed out");
    } else {
        last.answer =
            error_response(errc::upstream_unavailable,
                           "upstream unavailable (" + std::string(to_string(last.failure)) + ")");
    }
}

asio::awaitable<Attempt> Session::attempt(const Request& request,
                                          const rapidjson::Document& document,
                                          const config::RouteConfig& route_config,
                                          const config::TargetConfig& target,
                                          std::string_view suffix, Clock::time_point route_deadline,
                                          RequestRecord& record) {
    ++record.attempts;
    record.upstream_failure = {};  // this attempt's outcome, not an earlier one's
    const config::ProviderConfig* provider = config().find_provider(target.provider);
    record.target = target.provider + "/" + target.model;
    // The primary's price is the baseline the cost saving is measured against.
    const auto* primary_provider =
        config().find_provider(routing::serving_target(route_config).provider);
    record.metrics =
        worker_.target_metrics(record.route, target, provider->price, primary_provider->price);
    const protocol::Egress& egress = protocol::egress_for(provider->kind);
    if (!egress.serves(suffix)) {
        co_return Attempt::answered(error_response(
            errc::unsupported, "anthropic providers serve only /v1/chat/completions"));
    }
    std::string error;
    std::string body = protocol::upstream_body(request.body(), document, target, *provider, error);
    if (!error.empty()) co_return Attempt::answered(error_response(errc::invalid_request, error));
    Attempt outcome;
    const std::shared_ptr<CircuitBreaker> breaker = worker_.shared.breakers.of(*provider);
    if (breaker->admit(Clock::now()) == CircuitBreaker::Admission::rejected) {
        outcome.result = Attempt::Result::failed;
        outcome.circuit_open = true;
        outcome.retry_after = breaker->retry_after(Clock::now());
        record.upstream_failure = "circuit_open";
        if (record.metrics)
            record.metrics->upstream_error(metrics::UpstreamErrorKind::circuit_open);
        // At debug: under an open circuit every request would log it (the access log has it).
        log_event(gateway_log(), spdlog::level::debug, "upstream attempt skipped: circuit open",
                  {{"request_id", record.request_id},
                   {"route", record.route},
                   {"target", record.target}});
        co_return outcome;
    }
    const auto deadline = std::min(route_deadline, Clock::now() + provider->timeout);
    std::shared_ptr<UpstreamPool> pool = worker_.upstream.pool_for(*provider);
    auto upstream_request =
        make_upstream_request(&request, *provider, target, suffix, std::move(body),
                              snapshot_->providers->credential(provider->name), record.request_id);
    const auto upstream_start = Clock::now();
    // A non-streamed answer's head comes only after the whole generation: the deadline alone
    // bounds it. A stream's head (its first token) must come within first_byte_timeout.
    const auto head_deadline =
        record.stream ? Clock::now() + provider->first_byte_timeout : deadline;
    HeadExchange exchange =
        co_await exchange_head(pool, &upstream_request, deadline, head_deadline);
    // The provider's health for the breaker: it answered, and not with a 5xx. (A 429 is its
    // rate limit, not ill health; a stream that breaks later already had its head.)
    if (exchange.ec || exchange.head->get().result_int() >= 500) {
        if (breaker->record_failure(Clock::now())) {
            log_event(gateway_log(), spdlog::level::warn, "circuit opened",
                      {{"provider", provider->name},
                       {"failures", std::int64_t{provider->circuit_breaker.failures}},
                       {"cooldown_ms", std::int64_t{provider->circuit_breaker.cooldown.count()}}});
        }
    } else {
        breaker->record_success();
    }
    if (exchange.ec) {
        const error_code ec = exchange.ec;
        record.upstream_time += Clock::now() - upstream_start;
        outcome.result = Attempt::Result::failed;
        outcome.failure = classify_upstream_error(ec);
        record.upstream_failure = to_string(outcome.failure);
        if (record.metrics) record.metrics->upstream_error(metrics_kind(outcome.failure));
        log_event(gateway_log(), spdlog::level::warn, "upstream attempt failed",
                  {{"request_id", record.request_id},
                   {"route", record.route},
                   {"target", record.target},
                   {"attempt", static_cast<std::int64_t>(record.attempts)},
                   {"kind", to_string(outcome.failure)},
                   {"error", ec.message()}});
        co_return outcome;
    }
    auto& head = *exchange.head;
    const auto content_type = head.get()[http::field::content_type];
    if (head.get().result_int() == 200 && content_type.substr(0, 17) == "text/event-stream") {
        outcome.result = Attempt::Result::delivered;  // the relay writes it as it comes
        outcome.keep_alive = co_await relay_stream(head, std::move(exchange.connection),
                                                   std::move(pool), *provider, deadline, record);
        record.upstream_time += Clock::now() - upstream_start;
        co_return outcome;
    }
    outcome = co_await read_answer(head, std::move(exchange.connection), std::move(pool), egress,
                                   deadline, record);
    record.upstream_time += Clock::now() - upstream_start;
    co_return outcome;
}

/// Reads a whole (non-streamed) answer. Success and client errors are delivered (proxy()
/// writes them); a 5xx or 429 is kept for the caller, which may try elsewhere or pass it on.
asio::awaitable<Attempt> Session::read_answer(http::response_parser<http::empty_body>& head,
                                              ConnectionPtr connection,
                                              std::shared_ptr<UpstreamPool> pool,
                                              const protocol::Egress& egress,
                                              Clock::time_point deadline, RequestRecord& record) {
    Attempt outcome;
    http::response_parser<http::string_body> parser{std::move(head)};
    parser.body_limit(kMaxUpstreamBody);
    connection->tcp().expires_at(deadline);
    auto [ec, n] = co_await connection->read_all(parser);
    if (ec) {
        pool->release(std::move(connection), false);
        outcome.failure = classify_upstream_error(ec);
        record.upstream_failure = to_string(outcome.failure);
        if (record.metrics) record.metrics->upstream_error(metrics_kind(outcome.failure));
        co_return outcome;
    }
    pool->release(std::move(connection), parser.keep_alive());

    auto upstream = parser.release();
    http::response<http::string_body> response;
    copy_status(upstream, response);
    copy_response_headers(upstream, response);
    response.body() = std::move(upstream.body());
    const unsigned status = response.result_int();
    protocol::Answer answer =
        egress.answer(status, std::move(response.body()), record.request_id, record.target_model());
    if (answer.unusable) {
        outcome.failure = UpstreamFailure::protocol;
        record.upstream_failure = to_string(outcome.failure);
        co_return outcome;
    }
    response.body() = std::move(answer.body);
    if (answer.json_content_type) response.set(http::field::content_type, "application/json");
    if (answer.usage.input != 0 || answer.usage.output != 0) {
        record.input_tokens = answer.usage.input;
        record.output_tokens = answer.usage.output;
    }
    if (answer.speed) record.speed = std::move(answer.speed);
    if (retryable_status(status)) {
        if (record.metrics) {
            record.metrics->upstream_error(status == 429 ? metrics::UpstreamErrorKind::status_429
                                                         : metrics::UpstreamErrorKind::status_5xx);
        }
        log_event(gateway_log(), spdlog::level::warn, "upstream attempt failed",
                  {{"request_id", record.request_id},
                   {"route", record.route},
                   {"target", record.target},
                   {"attempt", static_cast<std::int64_t>(record.attempts)},
                   {"status", static_cast<std::int64_t>(status)}});
        outcome.result = Attempt::Result::upstream_status;
        outcome.answer = std::move(response);
        co_return outcome;
    }
    outcome.result = Attempt::Result::delivered;
    if (record.capture && status == 200) {
        if (response.body().size() <= kMaxShadowBytes) {
            record.captured_body = response.body();
        } else {
            record.capture = false;
            record.capture_skipped = true;
        }
    }
    outcome.answer = std::move(response);
    co_return outcome;
}

}  // namespace turnout::gateway
