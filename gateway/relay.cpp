// Streamed answers: the response head written, the SSE pump (sse_relay.hpp) run on the pooled
// connection beside a watcher that notices a client hang-up, the outcome recorded.

#include <sys/socket.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "base/logging.hpp"
#include "gateway/session.hpp"
#include "gateway/sse_relay.hpp"

namespace turnout::gateway {

using base::gateway_log;
using base::log_event;
using upstream::ConnectionPtr;
using upstream::UpstreamPool;

asio::awaitable<bool> Session::relay_stream(http::response_parser<http::empty_body>& head,
                                            ConnectionPtr connection,
                                            std::shared_ptr<UpstreamPool> pool,
                                            const config::ProviderConfig& provider,
                                            Clock::time_point deadline, RequestRecord& record) {
    http::response_parser<http::buffer_body> parser{std::move(head)};
    parser.body_limit(boost::none);  // bounded by the deadline instead

    http::response<http::empty_body> response;
    copy_status(parser.get(), response);
    copy_response_headers(parser.get(), response);
    add_turnout_headers(response, record);
    response.set(http::field::cache_control, "no-cache");
    if (http10_) keep_alive_ = false;  // the close delimits the body
    response.keep_alive(keep_alive());
    response.chunked(!http10_);
    record.status = response.result_int();
    http::response_serializer<http::empty_body> serializer{response};
    stream_.expires_after(config().limits.client_timeout);
    auto [ec, n] = co_await http::async_write_header(stream_, serializer, kToken);
    if (ec) {
        pool->release(std::move(connection), false);
        record.client_gone = true;
        co_return false;
    }

    const auto events =
        protocol::egress_for(provider.kind)
            .relay({record.request_id, std::string(record.target_model()), record.include_usage});
    const ChunkWriter<beast::tcp_stream> client{&stream_, config().limits.client_timeout, http10_};
    RelayState state{&parser,      events.get(), deadline, provider.stream_idle_timeout,
                     std::nullopt, false,        false};
    using namespace asio::experimental::awaitable_operators;
    co_await (pump_events(ConnectionReader{connection.get()}, client, &state, &record) ||
              watch_client(&state, connection.get()));
    const protocol::Usage usage = events->usage();
    if (usage.input != 0 || usage.output != 0) {
        record.input_tokens = usage.input;
        record.output_tokens = usage.output;
    }
    if (auto speed = events->speed()) record.speed = std::move(speed);

    if (state.client_gone) record.client_gone = true;
    if (state.failure) {
        record.upstream_failure = to_string(*state.failure);
        if (record.metrics) record.metrics->upstream_error(metrics_kind(*state.failure));
        log_event(gateway_log(), spdlog::level::warn, "upstream stream failed",
                  {{"request_id", record.request_id},
                   {"target", record.target},
                   {"kind", to_string(*state.failure)}});
    }
    pool->release(std::move(connection), state.complete() && parser.keep_alive());
    co_return co_await end_relay(client, &state, &record);
}

/// Notices a client that hangs up while the upstream is still thinking, and closes the
/// upstream so the provider stops generating (and billing).
asio::awaitable<void> Session::watch_client(RelayState* state,
                                            upstream::UpstreamConnection* upstream) {
    co_await asio::this_coro::throw_if_cancelled(false);
    auto [ec] = co_await stream_.socket().async_wait(tcp::socket::wait_read, kToken);
    if (ec == asio::error::operation_aborted) co_return;  // the relay finished first
    char byte = 0;
    const ssize_t n =
        ec ? 0 : ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
        // A pipelined next request, not a hang-up: stay out of the relay's way.
        asio::steady_timer forever(stream_.get_executor(), Clock::time_point::max());
        co_await forever.async_wait(kToken);
        co_return;
    }
    state->client_gone = true;
    upstream->close();
}

}  // namespace turnout::gateway
