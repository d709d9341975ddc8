#pragma once
/// The definitions of the SSE relay's templates (sse_relay.hpp): included by sse_relay.cpp,
/// which instantiates them for the gateway's streams, and by the unit tests, for
/// beast::test::stream.

#include <algorithm>
#include <array>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>

#include "gateway/sse_relay.hpp"
#include "protocol/sse.hpp"

namespace turnout::gateway {

template <class Stream>
asio::awaitable<bool> write_chunk(ChunkWriter<Stream> client, std::string_view data,
                                  RequestRecord* record) {
    Stream& stream = *client.stream;
    // A client too slow to read.
    if constexpr (requires { stream.expires_after(client.timeout); }) {
        stream.expires_after(client.timeout);
    }
    const asio::const_buffer bytes(data.data(), data.size());
    auto [ec, n] = client.http10
                       ? co_await asio::async_write(stream, bytes, kToken)
                       : co_await asio::async_write(stream, http::make_chunk(bytes), kToken);
    if (ec) co_return false;
    record->bytes_out += data.size();
    if (!record->first_byte) record->first_byte = Clock::now();
    co_return true;
}

template <class Stream>
asio::awaitable<bool> end_chunks(ChunkWriter<Stream> client) {
    if (client.http10) co_return true;
    Stream& stream = *client.stream;
    if constexpr (requires { stream.expires_after(client.timeout); }) {
        stream.expires_after(client.timeout);
    }
    auto [ec, n] = co_await asio::async_write(stream, http::make_chunk_last(), kToken);
    co_return !ec;
}

template <class Upstream, class Stream>
asio::awaitable<void> pump_events(Upstream upstream, ChunkWriter<Stream> client, RelayState* state,
                                  RequestRecord* record) {
    co_await asio::this_coro::throw_if_cancelled(false);
    protocol::SseSplitter splitter(kMaxSseEvent);
    std::array<char, kReadChunk> chunk;
    std::string events;
    auto& parser = *state->parser;
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        upstream.expires_at(std::min(state->deadline, Clock::now() + state->idle_timeout));
        auto [ec, n] = co_await upstream.read_some(parser);
        if (ec == http::error::need_buffer) ec = {};
        if (state->client_gone) co_return;
        if (ec) {
            state->failure = upstream::classify_upstream_error(ec);
            co_return;
        }
        splitter.feed({chunk.data(), chunk.size() - parser.get().body().size});
        events.clear();
        while (auto event = splitter.next_event()) {
            events += state->events->on_event(*event);
            if (state->events->failed()) break;
        }
        if (splitter.overflowed()) {
            state->failure = upstream::UpstreamFailure::protocol;
            co_return;
        }
        if (record->capture) relay_detail::capture_events(events, *record);
        if (!events.empty() && !co_await write_chunk(client, events, record)) {
            state->client_gone = true;
            co_return;
        }
        if (state->events->failed()) {
            state->relay_failed = true;
            co_return;
        }
    }
}

template <class Stream>
asio::awaitable<bool> end_relay(ChunkWriter<Stream> client, const RelayState* state,
                                RequestRecord* record) {
    if (state->client_gone) co_return false;
    if (state->relay_failed) {  // the error event is out already
        co_await end_chunks(client);
        co_return false;
    }
    if (state->failure) {
        const std::string event = relay_detail::stream_failure_event(*state->failure);
        if (co_await write_chunk(client, event, record)) co_await end_chunks(client);
        co_return false;  // the client must not reuse a connection after a broken stream
    }
    co_return co_await end_chunks(client) && !client.http10;
}

}  // namespace turnout::gateway
