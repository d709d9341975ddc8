// Streamed answers: SSE events relayed as they complete (translated by the provider's
// egress adapter), the client watched for a hang-up, the payloads kept for the judge.

#include <sys/socket.h>

#include <array>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "base/logging.hpp"
#include "gateway/session.hpp"
#include "protocol/sse.hpp"

namespace turnout::gateway {
namespace {

using base::gateway_log;
using base::log_event;
using upstream::classify_upstream_error;
using upstream::ConnectionPtr;
using upstream::UpstreamFailure;
using upstream::UpstreamPool;

constexpr std::size_t kMaxSseEvent = 4u << 20;

/// Keeps the data payloads of relayed events for the judge, bounded: a stream too long to
/// keep is not sampled after all.
void capture_events(std::string_view events, RequestRecord& record) {
    record.captured_bytes += events.size();
    if (record.captured_bytes > kMaxShadowBytes) {
        record.capture = false;
        record.capture_skipped = true;
        record.captured_payloads.clear();
        return;
    }
    for (std::size_t at = 0; at < events.size();) {
        auto end = events.find("\n\n", at);
        end = end == std::string_view::npos ? events.size() : end + 2;
        std::string data = protocol::sse_event_data(events.substr(at, end - at));
        if (!data.empty()) record.captured_payloads.push_back(std::move(data));
        at = end;
    }
}

}  // namespace

asio::awaitable<bool> Session::write_chunk(std::string_view data, RequestRecord& record) {
    stream_.expires_after(config().limits.client_timeout);  // a client too slow to read
    const asio::const_buffer bytes(data.data(), data.size());
    // HTTP/1.0 has no chunked coding: the body runs until the connection closes.
    auto [ec, n] = http10_ ? co_await asio::async_write(stream_, bytes, kToken)
                           : co_await asio::async_write(stream_, http::make_chunk(bytes), kToken);
    if (ec) co_return false;
    record.bytes_out += data.size();
    if (!record.first_byte) record.first_byte = Clock::now();
    co_return true;
}

/// The end of a streamed body: the last chunk, or nothing for HTTP/1.0 (the close ends it).
asio::awaitable<bool> Session::end_stream_body() {
    if (http10_) co_return true;
    stream_.expires_after(config().limits.client_timeout);
    auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk_last(), kToken);
    co_return !ec;
}

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

    const auto events = protocol::egress_for(provider.kind)
                            .relay({record.request_id, std::string(record.target_model()),
                                    record.include_usage});
    using namespace asio::experimental::awaitable_operators;
    RelayState state{connection.get(), &parser,     events.get(), deadline,
                     provider.stream_idle_timeout, std::nullopt, false, false};
    co_await (pump_events(&state, &record) || watch_client(&state));
    const protocol::Usage usage = events->usage();
    if (usage.input != 0 || usage.output != 0) {
        record.input_tokens = usage.input;
        record.output_tokens = usage.output;
    }
    if (auto speed = events->speed()) record.speed = std::move(speed);

    if (state.client_gone) {
        record.client_gone = true;
        pool->release(std::move(connection), false);
        co_return false;
    }
    if (state.relay_failed) {  // the error frame is out already
        pool->release(std::move(connection), false);
        co_await end_stream_body();
        co_return false;
    }
    if (state.failure) {
        pool->release(std::move(connection), false);
        record.upstream_failure = to_string(*state.failure);
        if (record.metrics) record.metrics->upstream_error(metrics_kind(*state.failure));
        log_event(gateway_log(), spdlog::level::warn, "upstream stream failed",
                  {{"request_id", record.request_id},
                   {"target", record.target},
                   {"kind", to_string(*state.failure)}});
        const std::string frame =
            "data: " +
            openai_error_body(errc::upstream_stream_failed,
                              "upstream stream failed (" +
                                  std::string(to_string(*state.failure)) + ")") +
            "\n\n";
        if (co_await write_chunk(frame, record)) co_await end_stream_body();
        co_return false;  // the client must not reuse a connection after a broken stream
    }
    pool->release(std::move(connection), parser.keep_alive());
    co_return co_await end_stream_body() && !http10_;
}

/// Relays whole SSE events as they complete, each batch in its own chunk, never the whole
/// body; Anthropic events are translated on the way.
asio::awaitable<void> Session::pump_events(RelayState* state, RequestRecord* record) {
    co_await asio::this_coro::throw_if_cancelled(false);
    protocol::SseSplitter splitter(kMaxSseEvent);
    std::array<char, kReadChunk> chunk;
    std::string events;
    auto& parser = *state->parser;
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        state->upstream->tcp().expires_at(
            std::min(state->deadline, Clock::now() + state->idle_timeout));
        auto [ec, n] = co_await state->upstream->read_some(parser);
        if (ec == http::error::need_buffer) ec = {};
        if (state->client_gone) co_return;
        if (ec) {
            state->failure = classify_upstream_error(ec);
            co_return;
        }
        splitter.feed({chunk.data(), chunk.size() - parser.get().body().size});
        events.clear();
        while (auto event = splitter.next_event()) {
            events += state->events->on_event(*event);
            if (state->events->failed()) break;
        }
        if (splitter.overflowed()) {
            state->failure = UpstreamFailure::protocol;
            co_return;
        }
        if (record->capture) capture_events(events, *record);
        if (!events.empty() && !co_await write_chunk(events, *record)) {
            state->client_gone = true;
            co_return;
        }
        if (state->events->failed()) {
            state->relay_failed = true;
            co_return;
        }
    }
}

/// Notices a client that hangs up while the upstream is still thinking, and closes the
/// upstream so the provider stops generating (and billing).
asio::awaitable<void> Session::watch_client(RelayState* state) {
    co_await asio::this_coro::throw_if_cancelled(false);
    auto [ec] = co_await stream_.socket().async_wait(tcp::socket::wait_read, kToken);
    if (ec == asio::error::operation_aborted) co_return;  // the relay finished first
    char byte = 0;
    const ssize_t n = ec ? 0 : ::recv(stream_.socket().native_handle(), &byte, 1,
                                      MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
        // A pipelined next request, not a hang-up: stay out of the relay's way.
        asio::steady_timer forever(stream_.get_executor(), Clock::time_point::max());
        co_await forever.async_wait(kToken);
        co_return;
    }
    state->client_gone = true;
    state->upstream->close();
}

}  // namespace turnout::gateway
