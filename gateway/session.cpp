// Client connections: reading requests under the limits, writing answers, and handing each
// request to the admin API or the proxy (session.hpp has the map).

#include "gateway/session.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

#include "base/logging.hpp"
#include "gateway/admin_api.hpp"

namespace turnout::gateway {
namespace {

using base::gateway_log;
using base::log_event;
/// Counts an API request in flight (the high-water mark, the gauge) for its whole life,
/// whatever way it ends.
class InflightGuard {
  public:
    explicit InflightGuard(Shared& shared)
        : shared_(shared), count_(shared.inflight.fetch_add(1, std::memory_order_relaxed) + 1) {
        if (shared_.metrics != nullptr) shared_.metrics->inflight_add(1);
    }
    ~InflightGuard() {
        shared_.inflight.fetch_sub(1, std::memory_order_relaxed);
        if (shared_.metrics != nullptr) shared_.metrics->inflight_add(-1);
    }
    InflightGuard(const InflightGuard&) = delete;
    InflightGuard& operator=(const InflightGuard&) = delete;
    /// The requests in flight with this one.
    std::int64_t count() const { return count_; }

  private:
    Shared& shared_;
    const std::int64_t count_;
};

asio::awaitable<ReloadOutcome> run_reload(Shared* shared) { co_return shared->reload(); }

}  // namespace

Session::Session(Worker& worker, tcp::socket socket, Listener listener)
    : worker_(worker),
      snapshot_(worker.shared.snapshot()),
      stream_(std::move(socket)),
      listener_(listener),
      request_timer_(stream_.get_executor()) {
    entry_ = worker_.sessions.insert(worker_.sessions.end(), {&stream_, true});
    timer_state_->stream = &stream_;
}

Session::~Session() {
    timer_state_->stream = nullptr;
    worker_.sessions.erase(entry_);
}

ReadLimits Session::read_limits() const {
    return ReadLimits{config().limits.max_header_bytes, config().limits.max_body_bytes};
}

std::int64_t Session::inflight_limit() const {
    const auto& limits = config().limits;
    if (limits.max_inflight != 0) return limits.max_inflight;
    // The connections actually accepted: max_connections may be capped by the fd limit.
    const std::int64_t accepted = std::min<std::int64_t>(
        limits.max_connections, std::int64_t{worker_.connection_limit} * worker_.shared.threads);
    return std::max<std::int64_t>(1, accepted * 9 / 10);
}

asio::awaitable<void> Session::run() {
    bool first_request = true;
    for (;;) {
        entry_->idle = true;
        if (worker_.shared.draining) break;
        if (buffer_.size() == 0) {
            // Waiting for the next request: the keep-alive idle timeout (client_timeout for
            // a fresh connection). Nothing is owed to a client that sent nothing.
            const auto& limits = config().limits;
            stream_.expires_after(first_request ? limits.client_timeout : limits.keepalive_timeout);
            buffer_.max_size(request_buffer_limit(read_limits()));
            auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kReadChunk), kToken);
            if (ec) break;
            buffer_.commit(n);
        }
        stream_.expires_never();
        entry_->idle = false;
        snapshot_ = worker_.shared.snapshot();  // a request runs on the config it started with
        const bool keep = co_await serve_one();
        first_request = false;
        if (!keep) break;
    }
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
}

void Session::start_request_timer() {
    // Our own timer rather than tcp_stream's expiry, which would close the socket before
    // the 408 could be written.
    auto state = timer_state_;
    state->timed_out = false;
    const std::uint64_t generation = ++state->generation;
    request_timer_.expires_after(config().limits.client_timeout);
    request_timer_.async_wait([state, generation](const error_code& ec) {
        if (ec || state->stream == nullptr || state->generation != generation) return;
        state->timed_out = true;
        error_code ignored;
        state->stream->socket().cancel(ignored);
    });
}

asio::awaitable<bool> Session::serve_one() {
    RequestRecord record;
    http::request_parser<http::string_body> parser;  // its limits are set by the reader
    start_request_timer();
    const bool complete = co_await read_request(parser, record);
    request_timer_.cancel();
    ++timer_state_->generation;  // an expiry already queued must not touch later phases
    if (!complete) {
        if (record.status != 0) finish_request(record);
        co_return false;
    }
    auto& request = parser.get();
    keep_alive_ = request.keep_alive();
    http10_ = request.version() == 10;
    // Admin calls (a scrape among them) are not live traffic: they do not count in flight.
    const bool keep = listener_ == Listener::admin ? co_await handle_admin(request, record)
                                                   : co_await serve_api(request, record);
    finish_request(record);
    co_return keep_alive() && keep;
}

/// Reads one request under the limits. False when the connection must close (an error
/// answer was sent when there was someone to send it to).
asio::awaitable<bool> Session::read_request(http::request_parser<http::string_body>& parser,
                                            RequestRecord& record) {
    const ReadOutcome outcome = co_await gateway::read_request(
        &stream_, &buffer_, &parser, read_limits(), &timer_state_->timed_out, &record);
    if (outcome.kind == ReadOutcome::Kind::answer) {
        co_await send_error(outcome.code, outcome.message, record, outcome.close);
    }
    co_return outcome.kind == ReadOutcome::Kind::request;
}

/// An API request, unless the gateway is at its high-water mark of requests in flight.
asio::awaitable<bool> Session::serve_api(Request& request, RequestRecord& record) {
    const InflightGuard inflight(worker_.shared);
    if (inflight.count() <= inflight_limit()) co_return co_await handle_api(request, record);
    // The high-water mark: a fast, retryable refusal rather than a queue that grows. One
    // warning a second per worker at most: an overload must not also flood the log.
    const auto now = Clock::now();
    if (now - worker_.last_overload_log >= std::chrono::seconds(1)) {
        worker_.last_overload_log = now;
        log_event(gateway_log(), spdlog::level::warn, "request refused at the high-water mark",
                  {{"request_id", record.request_id},
                   {"inflight", inflight.count() - 1},
                   {"limit", inflight_limit()}});
    }
    keep_alive_ = false;
    auto refusal =
        unavailable_response(errc::overloaded, "the gateway is at its limit of requests in flight",
                             std::chrono::seconds(1));
    co_await send_response(refusal, record);
    co_return false;
}

void Session::add_turnout_headers(http::fields& fields, const RequestRecord& record) const {
    fields.set(kRequestIdHeader, record.request_id);
    fields.set("x-turnout-route", record.route);
    fields.set("x-turnout-target", record.target);
}

asio::awaitable<bool> Session::send_response(Response& response, RequestRecord& record) {
    add_turnout_headers(response, record);
    response.keep_alive(keep_alive());
    response.prepare_payload();
    record.status = response.result_int();
    record.bytes_out = response.body().size();
    stream_.expires_after(config().limits.client_timeout);
    auto [ec, n] = co_await http::async_write(stream_, response, kToken);
    if (!record.first_byte) record.first_byte = Clock::now();
    co_return !ec;
}

asio::awaitable<bool> Session::send_json(unsigned status, std::string body, RequestRecord& record) {
    Response response{static_cast<http::status>(status), 11};
    response.set(http::field::content_type, "application/json");
    response.body() = std::move(body);
    co_return co_await send_response(response, record);
}

asio::awaitable<bool> Session::send_error(errc code, std::string_view message,
                                          RequestRecord& record, bool close) {
    if (close) keep_alive_ = false;
    auto response = error_response(code, message);
    const bool sent = co_await send_response(response, record);
    co_return sent && !close;
}

Attempt Attempt::answered(Response response) {
    Attempt attempt;
    attempt.result = Result::delivered;
    attempt.answer = std::move(response);
    return attempt;
}

Response error_response(errc code, std::string_view message) {
    Response response{static_cast<http::status>(error_shape(code).status), 11};
    response.set(http::field::content_type, "application/json");
    response.body() = openai_error_body(code, message);
    return response;
}

Response unavailable_response(errc code, std::string_view message, Clock::duration retry_after) {
    Response response = error_response(code, message);
    const auto seconds =
        std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::seconds>(retry_after).count());
    response.set(http::field::retry_after, std::to_string(seconds));
    return response;
}

/// The admin listener: the request to the admin API, its answer to the client.
asio::awaitable<bool> Session::handle_admin(Request& request, RequestRecord& record) {
    Shared& shared = worker_.shared;
    AdminContext context;
    context.draining = &shared.draining;
    context.metrics = shared.metrics;
    context.admin_token = snapshot_->admin_token;
    context.shadow = shared.shadow;
    // Reloads run on the control thread, one at a time, off every worker's data path.
    context.reload = [&shared]() -> asio::awaitable<ReloadOutcome> {
        co_return co_await asio::co_spawn(*shared.control, run_reload(&shared),
                                          asio::use_awaitable);
    };
    AdminRequest admin;
    admin.get = request.method() == http::verb::get;
    admin.post = request.method() == http::verb::post;
    admin.path = record.path;
    admin.target = std::string_view(request.target());
    admin.authorization = request[http::field::authorization];
    admin.body = request.body();
    AdminAnswer answer = co_await answer_admin(std::move(context), admin);
    Response response{static_cast<http::status>(answer.status), 11};
    response.set(http::field::content_type, answer.content_type);
    response.body() = std::move(answer.body);
    co_return co_await send_response(response, record);
}

/// The access-log line and the request's metrics.
void Session::finish_request(RequestRecord& record) const {
    const RequestTimes times = request_times(record, Clock::now());
    if (listener_ == Listener::api && worker_.shared.metrics != nullptr) {
        if (!record.metrics) record.metrics = worker_.unmatched_metrics();
        record.metrics->request(record.status, times.duration);
        if (times.ttfb >= 0) record.metrics->time_to_first_token(times.ttfb);
        record.metrics->tokens(record.input_tokens, record.output_tokens);
        record.metrics->overhead(times.overhead);
    }
    write_access_log(record, listener_, times);
}

ConnectionSlot::ConnectionSlot(Worker& worker, Listener listener)
    : worker_(&worker), listener_(listener) {
    if (listener_ == Listener::api) ++worker_->connections;
    ++worker_->shared.open_connections;
}

ConnectionSlot::~ConnectionSlot() {
    if (worker_ == nullptr) return;  // moved from
    if (listener_ == Listener::api) --worker_->connections;
    --worker_->shared.open_connections;
    // Not while draining: the accept loop is over, and at shutdown its frame (which owns the
    // waiter's timer) may be destroyed before this one.
    if (worker_->accept_waiter != nullptr && !worker_->shared.draining) {
        worker_->accept_waiter->cancel();
    }
}

asio::awaitable<void> run_session(Worker* worker, tcp::socket socket, Listener listener,
                                  [[maybe_unused]] ConnectionSlot slot) {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    Session session(*worker, std::move(socket), listener);
    co_await session.run();
}

}  // namespace turnout::gateway
