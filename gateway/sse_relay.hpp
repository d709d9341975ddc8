#pragma once
/// The SSE relay's data path, over any pair of streams: the pump that reads a streamed answer
/// from the upstream through a fixed buffer and writes each batch of complete events to the
/// client as one HTTP chunk (translated by the provider's egress adapter, kept for the judge),
/// and the end of the streamed body it leaves owed. The session (relay.cpp) runs the pump on a
/// pooled connection and the client's tcp_stream, beside its hang-up watcher; the unit tests
/// run it on beast::test::stream.
///
/// Includes Beast: include it only from the session's translation units. The templates'
/// definitions are in sse_relay_impl.hpp; sse_relay.cpp instantiates them for
/// ConnectionReader and beast::tcp_stream.

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "config/duration.hpp"
#include "gateway/request_reader.hpp"
#include "gateway/request_record.hpp"
#include "protocol/egress.hpp"
#include "upstream/pool.hpp"

namespace turnout::gateway {

/// A sampled pair bigger than this is skipped (and counted): the queue must stay bounded.
inline constexpr std::size_t kMaxShadowBytes = 1u << 20;
/// A partial SSE event longer than this ends the stream with a protocol failure.
inline constexpr std::size_t kMaxSseEvent = 4u << 20;

/// The client's end of a streamed body: each batch of events one chunk (raw bytes for
/// HTTP/1.0, whose body runs until the connection closes), each write under the slow-client
/// timeout (when the stream has a timer: beast::test::stream has none).
template <class Stream>
struct ChunkWriter {
    Stream* stream;
    config::Duration timeout;
    bool http10 = false;
};

/// The upstream's end as the pump reads it: a pooled connection, plain or TLS. Any type with
/// these two members will do (the unit tests read a beast::test::stream).
struct ConnectionReader {
    upstream::UpstreamConnection* connection;

    void expires_at(Clock::time_point when) const { connection->tcp().expires_at(when); }
    /// The connection's own read: no frame of its own on the data path.
    asio::awaitable<std::tuple<upstream::error_code, std::size_t>> read_some(
        http::response_parser<http::buffer_body>& parser) const {
        return connection->read_some(parser);
    }
};

/// One streamed answer, shared between the pump and the session's hang-up watcher. The pump
/// ends in exactly one of: the body relayed whole (none of the three below), `failure` (the
/// upstream read failed, or sent an event over kMaxSseEvent: protocol), `client_gone` (a
/// write to the client failed, or the watcher saw a hang-up), `relay_failed` (the provider's
/// stream failed in-band; its error event is out already).
struct RelayState {
    http::response_parser<http::buffer_body>* parser;
    protocol::EventRelay* events;
    Clock::time_point deadline;     ///< the request's total deadline
    config::Duration idle_timeout;  ///< the longest gap between two upstream reads
    std::optional<upstream::UpstreamFailure> failure;
    bool client_gone = false;
    bool relay_failed = false;

    /// The body came whole and nothing failed.
    bool complete() const { return !failure && !client_gone && !relay_failed && parser->is_done(); }
};

/// Writes `data` as one chunk (raw for HTTP/1.0); counts it in the record's bytes_out and
/// first_byte. False when the write failed.
template <class Stream>
asio::awaitable<bool> write_chunk(ChunkWriter<Stream> client, std::string_view data,
                                  RequestRecord* record);

/// The end of a streamed body: the last chunk, or nothing for HTTP/1.0 (the close ends it).
template <class Stream>
asio::awaitable<bool> end_chunks(ChunkWriter<Stream> client);

/// Relays whole SSE events as they complete, each batch read in one go in its own chunk,
/// never the whole body; each upstream read expires at min(deadline, now + idle_timeout).
/// Ends as RelayState says. Every pointer must outlive the call.
template <class Upstream, class Stream>
asio::awaitable<void> pump_events(Upstream upstream, ChunkWriter<Stream> client, RelayState* state,
                                  RequestRecord* record);

/// Writes what the client is still owed once the pump ended: nothing when it is gone; the
/// last chunk after an in-band failure or a whole body; an error event, then the last chunk,
/// after an upstream failure. True when the client connection may serve another request.
template <class Stream>
asio::awaitable<bool> end_relay(ChunkWriter<Stream> client, const RelayState* state,
                                RequestRecord* record);

namespace relay_detail {

/// Keeps the data payloads of relayed events for the judge, bounded: a stream too long to
/// keep is not sampled after all (capture off, capture_skipped on, payloads dropped).
void capture_events(std::string_view events, RequestRecord& record);

/// The event that tells the client the upstream's stream broke.
std::string stream_failure_event(upstream::UpstreamFailure failure);

}  // namespace relay_detail

extern template asio::awaitable<void> pump_events<ConnectionReader, beast::tcp_stream>(
    ConnectionReader, ChunkWriter<beast::tcp_stream>, RelayState*, RequestRecord*);
extern template asio::awaitable<bool> end_relay<beast::tcp_stream>(ChunkWriter<beast::tcp_stream>,
                                                                   const RelayState*,
                                                                   RequestRecord*);

}  // namespace turnout::gateway
