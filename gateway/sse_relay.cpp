// The SSE relay's pieces that need no stream, and its templates instantiated for the
// gateway's connections (sse_relay.hpp has the map).

#include "gateway/errors.hpp"
#include "gateway/sse_relay_impl.hpp"

namespace turnout::gateway {
namespace relay_detail {

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

std::string stream_failure_event(upstream::UpstreamFailure failure) {
    return "data: " +
           openai_error_body(errc::upstream_stream_failed,
                             "upstream stream failed (" + std::string(to_string(failure)) + ")") +
           "\n\n";
}

}  // namespace relay_detail

// The client's writes are bounded by the slow-client timeout only where the stream has a timer
// (sse_relay_impl.hpp): the gateway's must have one.
static_assert(requires(beast::tcp_stream & stream, config::Duration timeout) {
    stream.expires_after(timeout);
});

template asio::awaitable<void> pump_events<ConnectionReader, beast::tcp_stream>(
    ConnectionReader, ChunkWriter<beast::tcp_stream>, RelayState*, RequestRecord*);
template asio::awaitable<bool> end_relay<beast::tcp_stream>(ChunkWriter<beast::tcp_stream>,
                                                            const RelayState*, RequestRecord*);

}  // namespace turnout::gateway
