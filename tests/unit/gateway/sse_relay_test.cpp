// The SSE relay's pump on beast::test::stream: the upstream's answer written into one test
// stream in pieces, the client's chunks read back from the other and de-chunked. Each outcome
// of the pump with what the client got, and every stream operation failed in turn
// (test::fail_count).

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/error.hpp>
#include <boost/beast/_experimental/test/fail_count.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "base/logging.hpp"
#include "gateway/sse_relay_impl.hpp"

namespace turnout::gateway {
namespace {

namespace test = beast::test;
using boost::system::error_code;
using config::ProviderKind;
using upstream::UpstreamFailure;

constexpr std::size_t kNever = std::numeric_limits<std::size_t>::max();
constexpr config::Duration kIdle = std::chrono::seconds(30);

const std::string kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
// No length and no chunking: the body runs until the upstream closes.
const std::string kCloseHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

/// The upstream's end for the pump: a test stream read through the parser, as the pooled
/// connection reads its socket. A test stream has no timer: the expiries are kept to look at.
struct TestReader {
    test::stream* stream;
    beast::flat_buffer* buffer;
    std::vector<Clock::time_point>* expiries;

    void expires_at(Clock::time_point when) const { expiries->push_back(when); }
    asio::awaitable<std::tuple<error_code, std::size_t>> read_some(
        http::response_parser<http::buffer_body>& parser) const {
        return http::async_read_some(*stream, *buffer, parser, kToken);
    }
};

asio::awaitable<void> run_pump(TestReader upstream, ChunkWriter<test::stream> client,
                               RelayState* state, RequestRecord* record, bool* done) {
    co_await pump_events(upstream, client, state, record);
    *done = true;
}

asio::awaitable<void> run_end(ChunkWriter<test::stream> client, const RelayState* state,
                              RequestRecord* record, std::optional<bool>* keep_alive) {
    *keep_alive = co_await end_relay(client, state, record);
}

void rethrow(std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
}

/// The body as an upstream sends it chunked, one HTTP chunk per piece (their boundaries are
/// not the events').
std::string chunked(const std::vector<std::string>& pieces) {
    std::string wire;
    char size[32];
    for (const auto& piece : pieces) {
        std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        wire += size + piece + "\r\n";
    }
    return wire + "0\r\n\r\n";
}

/// What the client received: the chunks' payloads, and whether the last chunk came.
struct Received {
    std::vector<std::string> chunks;
    bool last = false;

    std::string joined() const {
        std::string all;
        for (const auto& chunk : chunks) all += chunk;
        return all;
    }
};

/// The chunks with the translator's `"created"` seconds masked: two runs of a scenario may
/// straddle a second.
std::vector<std::string> timeless(const std::vector<std::string>& chunks) {
    static const std::regex created(R"("created":[0-9]+)");
    std::vector<std::string> out;
    for (const auto& chunk : chunks)
        out.push_back(std::regex_replace(chunk, created, "\"created\":0"));
    return out;
}

Received dechunk(std::string_view wire) {
    Received received;
    while (!wire.empty()) {
        const auto eol = wire.find("\r\n");
        if (eol == std::string_view::npos) {
            ADD_FAILURE() << "a chunk line without CRLF: " << wire;
            break;
        }
        const std::size_t size = std::stoul(std::string(wire.substr(0, eol)), nullptr, 16);
        wire.remove_prefix(eol + 2);
        if (size == 0) {
            EXPECT_EQ(wire, "\r\n") << "bytes after the last chunk";
            received.last = true;
            break;
        }
        EXPECT_GE(wire.size(), size + 2) << "a truncated chunk";
        received.chunks.emplace_back(wire.substr(0, size));
        EXPECT_EQ(wire.substr(size, 2), "\r\n");
        wire.remove_prefix(std::min(wire.size(), size + 2));
    }
    return received;
}

struct Options {
    ProviderKind kind = ProviderKind::openai;
    std::size_t upstream_fail_at = kNever;  ///< the upstream stream's operation that fails
    std::size_t client_fail_at = kNever;    ///< the client stream's operation that fails
    /// One count over both streams' operations (upstream_fail_at): each is failed in turn.
    bool shared_count = false;
    error_code error = test::error::test_failure;
    bool http10 = false;
};

/// One streamed answer: the upstream's end (`upstream`, written through `upstream_peer` or
/// filled at once), the pump, the client's end (`client`, read back from `client_peer`).
struct Relay {
    explicit Relay(std::string_view head, Options options = {})
        : upstream_fail(options.upstream_fail_at, options.error),
          client_fail(options.client_fail_at, options.error),
          upstream(io, upstream_fail),
          upstream_peer(io),
          client(io, options.shared_count ? upstream_fail : client_fail),
          client_peer(io),
          http10(options.http10) {
        upstream.connect(upstream_peer);
        client.connect(client_peer);
        // The head as the proxy read it before the relay began.
        http::response_parser<http::empty_body> head_parser;
        error_code ec;
        head_parser.put(asio::buffer(head.data(), head.size()), ec);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_TRUE(head_parser.is_header_done());
        parser.emplace(std::move(head_parser));
        parser->body_limit(boost::none);
        events = protocol::egress_for(options.kind).relay({"req-1", "model-x", true});
        state.emplace(
            RelayState{&*parser, events.get(), deadline, kIdle, std::nullopt, false, false});
    }

    ChunkWriter<test::stream> writer() { return {&client, std::chrono::seconds(5), http10}; }

    /// Starts the pump and runs until it waits for the upstream (or is done).
    void start() {
        asio::co_spawn(
            io, run_pump({&upstream, &buffer, &expiries}, writer(), &*state, &record, &pumped),
            rethrow);
        io.poll();
    }
    /// The upstream sends `bytes`; the pump runs until it waits again.
    void send(std::string_view bytes) {
        asio::write(upstream_peer, asio::buffer(bytes.data(), bytes.size()));
        io.poll();
    }
    /// The whole body already there (and the upstream's end closed after it): runs the pump
    /// to its end.
    void pump(std::string_view body) {
        upstream.append(body);
        upstream.close_remote();
        start();
        io.run();
        EXPECT_TRUE(pumped) << "the pump never finished";
    }
    /// What the relay writes once the pump ended; its verdict on the client connection.
    bool finish() {
        io.restart();
        std::optional<bool> keep_alive;
        asio::co_spawn(io, run_end(writer(), &*state, &record, &keep_alive), rethrow);
        io.run();
        EXPECT_TRUE(keep_alive.has_value()) << "the end never finished";
        return keep_alive.value_or(true);
    }
    Received received() const { return dechunk(client_peer.str()); }
    /// How many of the pump's outcomes were reached: exactly one, whatever happened.
    int outcomes() const {
        return int(state->complete()) + int(state->failure.has_value()) + int(state->client_gone) +
               int(state->relay_failed);
    }
    std::size_t operations() const {
        return upstream.nread() + upstream.nwrite() + client.nread() + client.nwrite();
    }

    asio::io_context io;
    test::fail_count upstream_fail;
    test::fail_count client_fail;
    test::stream upstream;
    test::stream upstream_peer;
    test::stream client;
    test::stream client_peer;
    bool http10;
    Clock::time_point deadline = Clock::now() + std::chrono::hours(1);
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::buffer_body>> parser;
    std::unique_ptr<protocol::EventRelay> events;
    std::optional<RelayState> state;
    RequestRecord record;
    std::vector<Clock::time_point> expiries;
    bool pumped = false;
};

class SseRelayTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { base::init_logging({.level = "error", .format = "text"}); }
};

std::string data_event(std::string_view json) { return "data: " + std::string(json) + "\n\n"; }

// --- Anthropic events, as the provider sends them ---------------------------------------

std::string anthropic_event(std::string_view type, std::string_view data) {
    return "event: " + std::string(type) + "\ndata: " + std::string(data) + "\n\n";
}
const std::string kMessageStart = anthropic_event(
    "message_start",
    R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",)"
    R"("model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,)"
    R"("usage":{"input_tokens":7,"output_tokens":1}}})");
const std::string kTextStart = anthropic_event(
    "content_block_start",
    R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
std::string text_delta(std::string_view text) {
    return anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,)"
                                                  R"("delta":{"type":"text_delta","text":")" +
                                                      std::string(text) + "\"}}");
}
const std::string kBlockStop =
    anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":0})");
const std::string kMessageDelta =
    anthropic_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn",)"
                                     R"("stop_sequence":null},"usage":{"output_tokens":3}})");
const std::string kMessageStop = anthropic_event("message_stop", R"({"type":"message_stop"})");
const std::string kOverloaded = anthropic_event(
    "error", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");

// --- the tests ------------------------------------------------------------------------

TEST_F(SseRelayTest, EventsLeaveOnlyWholeAndEachReadsBatchIsOneChunk) {
    const std::string first = data_event(R"({"n":1})");
    const std::string second = data_event(R"({"n":2})");
    const std::string third = data_event(R"({"n":3})");
    // The upstream's HTTP chunks cut the events anywhere: mid-event, mid-chunk-line.
    const std::string wire = chunked({first.substr(0, 5), first.substr(5) + second + third});
    const std::size_t cut1 = wire.find("{\"n\":1") + 2;  // inside the first event
    const std::size_t cut2 = wire.find("{\"n\":3") + 2;  // inside the third

    Relay relay(kChunkedHead);
    relay.start();
    relay.send(wire.substr(0, cut1));
    EXPECT_EQ(relay.client_peer.str(), "") << "half an event left";
    EXPECT_FALSE(relay.record.first_byte);

    relay.send(wire.substr(cut1, cut2 - cut1));
    EXPECT_EQ(relay.received().chunks, (std::vector<std::string>{first + second}));
    EXPECT_EQ(relay.record.bytes_out, first.size() + second.size());
    EXPECT_TRUE(relay.record.first_byte);

    relay.send(wire.substr(cut2));
    ASSERT_TRUE(relay.pumped);
    EXPECT_TRUE(relay.state->complete());
    EXPECT_EQ(relay.outcomes(), 1);
    EXPECT_EQ(relay.received().chunks, (std::vector<std::string>{first + second, third}));
    EXPECT_FALSE(relay.received().last);

    EXPECT_TRUE(relay.finish()) << "a whole chunked body keeps the client connection";
    EXPECT_TRUE(relay.received().last);
    EXPECT_EQ(relay.record.bytes_out, first.size() + second.size() + third.size());
    // Each read waits at most the idle gap (the deadline is an hour away). The parser's reads
    // outnumber the stream's: a chunk line already in the buffer needs no stream read.
    ASSERT_GE(relay.expiries.size(), relay.upstream.nread());
    for (const auto expiry : relay.expiries) {
        EXPECT_LE(expiry, Clock::now() + kIdle);
        EXPECT_LT(expiry, relay.deadline);
    }
}

TEST_F(SseRelayTest, TheDeadlineBoundsEachReadWhenItIsNearerThanTheIdleGap) {
    Relay relay(kChunkedHead);
    relay.state->deadline = Clock::now() + std::chrono::seconds(1);
    relay.pump(chunked({data_event("{}")}));
    EXPECT_TRUE(relay.state->complete());
    ASSERT_FALSE(relay.expiries.empty());
    for (const auto expiry : relay.expiries) EXPECT_EQ(expiry, relay.state->deadline);
}

TEST_F(SseRelayTest, TheOpenAiPassthroughIsByteIdentical) {
    // CRLF and LF line ends, comments, a multi-line event, the usage chunk, [DONE].
    const std::string body =
        ": keep-alive\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"h\\u00e9\"}}]}\r\n\r\n"
        "event: x\ndata: {\"a\":\ndata: 1}\n\n" +
        data_event(R"({"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}})") +
        "data: [DONE]\n\n";
    for (const bool http10 : {false, true}) {
        SCOPED_TRACE(http10 ? "HTTP/1.0 client" : "HTTP/1.1 client");
        Relay relay(kCloseHead, {.http10 = http10});
        relay.upstream.read_size(7);
        relay.pump(body);
        EXPECT_TRUE(relay.state->complete());
        EXPECT_EQ(relay.record.bytes_out, body.size());
        EXPECT_EQ(relay.events->usage().input, 4u);
        EXPECT_EQ(relay.events->usage().output, 2u);
        // The client's body ends with its last chunk whatever delimited the upstream's; an
        // HTTP/1.0 body ends with the connection.
        EXPECT_EQ(relay.finish(), !http10);
        if (http10) {
            EXPECT_EQ(relay.client_peer.str(), body) << "HTTP/1.0: the raw bytes, no chunks";
        } else {
            const Received received = relay.received();
            EXPECT_EQ(received.joined(), body);
            EXPECT_TRUE(received.last);
        }
    }
}

TEST_F(SseRelayTest, AnEventOverTheMaxSizeIsAProtocolFailure) {
    const std::string small = data_event("{}");
    Relay relay(kCloseHead);
    relay.pump(small + "data: " + std::string(kMaxSseEvent + 10, 'x'));
    ASSERT_TRUE(relay.state->failure);
    EXPECT_EQ(*relay.state->failure, UpstreamFailure::protocol);
    EXPECT_EQ(relay.outcomes(), 1);
    // Stopped once the event passed the limit, not at the end of the upstream's bytes.
    EXPECT_FALSE(relay.parser->is_done());
    EXPECT_LT(relay.upstream.nread_bytes(), kMaxSseEvent + small.size() + 2 * kReadChunk);

    EXPECT_FALSE(relay.finish());
    const Received received = relay.received();
    ASSERT_EQ(received.chunks.size(), 2u);
    EXPECT_EQ(received.chunks[0], small);
    EXPECT_EQ(received.chunks[1], relay_detail::stream_failure_event(UpstreamFailure::protocol));
    EXPECT_NE(received.chunks[1].find("upstream stream failed (protocol)"), std::string::npos);
    EXPECT_TRUE(received.last);
}

TEST_F(SseRelayTest, AnUpstreamReadErrorGivesItsKindAndKeepsWhatWasRelayed) {
    const std::string first = data_event(R"({"n":1})");
    const std::string second = data_event(R"({"n":2})");
    const std::vector<std::pair<error_code, UpstreamFailure>> cases = {
        {asio::error::connection_reset, UpstreamFailure::reset},
        {beast::error::timeout, UpstreamFailure::timeout},
        {test::error::test_failure, UpstreamFailure::protocol},
    };
    for (const auto& [error, kind] : cases) {
        SCOPED_TRACE(error.message());
        // The first read brings one event; the second read fails.
        Relay relay(kCloseHead, {.upstream_fail_at = 2, .error = error});
        relay.upstream.read_size(first.size());
        relay.pump(first + second);
        ASSERT_TRUE(relay.state->failure);
        EXPECT_EQ(*relay.state->failure, kind);
        EXPECT_EQ(relay.outcomes(), 1);
        EXPECT_EQ(relay.record.bytes_out, first.size());

        EXPECT_FALSE(relay.finish());
        const Received received = relay.received();
        ASSERT_EQ(received.chunks.size(), 2u);
        EXPECT_EQ(received.chunks[0], first);
        EXPECT_EQ(received.chunks[1], relay_detail::stream_failure_event(kind));
        EXPECT_TRUE(received.last);
    }
    // The upstream closing mid-event: the bytes before are out, the half event is not.
    Relay cut(kChunkedHead);
    const std::string wire = chunked({first + second});
    cut.pump(wire.substr(0, wire.find(R"({"n":2})")));
    ASSERT_TRUE(cut.state->failure);
    EXPECT_EQ(*cut.state->failure, UpstreamFailure::reset);
    EXPECT_EQ(cut.received().chunks, (std::vector<std::string>{first}));
}

TEST_F(SseRelayTest, AnAnthropicStreamIsTranslated) {
    const std::string body = kMessageStart + kTextStart + text_delta("Hello") +
                             text_delta(" world") + kBlockStop + kMessageDelta + kMessageStop;
    Relay relay(kChunkedHead, {.kind = ProviderKind::anthropic});
    relay.upstream.read_size(40);
    relay.pump(chunked({body.substr(0, 100), body.substr(100)}));
    EXPECT_TRUE(relay.state->complete());
    EXPECT_TRUE(relay.finish());

    const Received received = relay.received();
    ASSERT_FALSE(received.chunks.empty());
    for (const auto& chunk : received.chunks) {
        // Whole OpenAI frames only: no Anthropic event name gets through.
        EXPECT_EQ(chunk.rfind("data: ", 0), 0u) << chunk;
        EXPECT_EQ(chunk.substr(chunk.size() - 2), "\n\n") << chunk;
        EXPECT_EQ(chunk.find("event:"), std::string::npos) << chunk;
    }
    const std::string all = received.joined();
    EXPECT_NE(all.find(R"("object":"chat.completion.chunk")"), std::string::npos) << all;
    EXPECT_NE(all.find(R"("model":"model-x")"), std::string::npos) << all;
    EXPECT_NE(all.find(R"("content":"Hello")"), std::string::npos) << all;
    EXPECT_NE(all.find(R"("content":" world")"), std::string::npos) << all;
    EXPECT_NE(all.find(R"("finish_reason":"stop")"), std::string::npos) << all;
    EXPECT_EQ(all.substr(all.size() - 14), "data: [DONE]\n\n");
    EXPECT_TRUE(received.last);
    EXPECT_EQ(relay.events->usage().input, 7u);
    EXPECT_EQ(relay.events->usage().output, 3u);
    EXPECT_EQ(relay.record.bytes_out, all.size());
}

TEST_F(SseRelayTest, AnAnthropicErrorEventStopsThePumpAfterItsFrame) {
    // The error and a later event come in one read: nothing after the error leaves.
    Relay relay(kChunkedHead, {.kind = ProviderKind::anthropic});
    relay.start();
    const std::string head = kMessageStart + kTextStart + text_delta("Hi");
    const std::string tail = kOverloaded + text_delta("never") + kMessageStop;
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", head.size());
    relay.send(size + head + "\r\n");
    EXPECT_FALSE(relay.pumped);
    EXPECT_EQ(relay.received().chunks.size(), 1u);
    std::snprintf(size, sizeof size, "%zx\r\n", tail.size());
    relay.send(size + tail + "\r\n");
    ASSERT_TRUE(relay.pumped);
    EXPECT_TRUE(relay.state->relay_failed);
    EXPECT_EQ(relay.outcomes(), 1);
    EXPECT_FALSE(relay.parser->is_done()) << "the upstream's end was not awaited";

    const Received before_end = relay.received();
    ASSERT_EQ(before_end.chunks.size(), 2u);
    EXPECT_FALSE(before_end.last);
    const std::string& error_chunk = before_end.chunks[1];
    EXPECT_EQ(error_chunk,
              "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\","
              "\"code\":\"overloaded_error\"}}\n\n");
    EXPECT_EQ(before_end.joined().find("never"), std::string::npos);

    EXPECT_FALSE(relay.finish());
    const Received received = relay.received();
    EXPECT_EQ(received.chunks, before_end.chunks) << "no second error event";
    EXPECT_TRUE(received.last);
}

TEST_F(SseRelayTest, AClientWriteFailureIsClientGone) {
    const std::string first = data_event(R"({"n":1})");
    const std::string second = data_event(R"({"n":2})");
    for (const std::size_t failing_write : {1u, 2u}) {
        SCOPED_TRACE(failing_write);
        Relay relay(kCloseHead, {.client_fail_at = failing_write});
        relay.upstream.read_size(first.size());
        relay.pump(first + second);
        EXPECT_TRUE(relay.state->client_gone);
        EXPECT_FALSE(relay.state->failure);
        EXPECT_EQ(relay.outcomes(), 1);
        EXPECT_EQ(relay.client.nwrite(), failing_write) << "no write after the failed one";
        EXPECT_FALSE(relay.finish());
        EXPECT_EQ(relay.client.nwrite(), failing_write) << "nothing owed to a client gone";
        const Received received = relay.received();
        EXPECT_EQ(received.chunks,
                  failing_write == 1 ? std::vector<std::string>{} : std::vector{first});
        EXPECT_FALSE(received.last);
        EXPECT_EQ(relay.record.bytes_out, failing_write == 1 ? 0 : first.size());
    }
    // The connection closed under the relay: the write fails (connection_reset).
    Relay relay(kCloseHead);
    relay.client.close();
    relay.pump(first);
    EXPECT_TRUE(relay.state->client_gone);
}

TEST_F(SseRelayTest, CaptureKeepsThePayloadsUpToTheShadowLimit) {
    const std::vector<std::string> payloads = {R"({"n":1})", R"({"n":2})", "[DONE]"};
    std::string body = ": comment\n\n";
    for (const auto& payload : payloads) body += data_event(payload);
    Relay small(kCloseHead);
    small.record.capture = true;
    small.upstream.read_size(9);
    small.pump(body);
    EXPECT_TRUE(small.record.capture);
    EXPECT_FALSE(small.record.capture_skipped);
    EXPECT_EQ(small.record.captured_payloads, payloads);
    EXPECT_EQ(small.record.captured_bytes, body.size());

    // Past the limit the capture stops and is counted as skipped; the relay goes on.
    const std::string big_event = data_event("\"" + std::string(10000, 'b') + "\"");
    std::string big;
    while (big.size() <= 2 * kMaxShadowBytes) big += big_event;
    big += data_event("[DONE]");
    Relay relay(kCloseHead);
    relay.record.capture = true;
    relay.pump(big);
    EXPECT_TRUE(relay.state->complete());
    EXPECT_FALSE(relay.record.capture);
    EXPECT_TRUE(relay.record.capture_skipped);
    EXPECT_TRUE(relay.record.captured_payloads.empty());
    EXPECT_GT(relay.record.captured_bytes, kMaxShadowBytes);
    EXPECT_LT(relay.record.captured_bytes, big.size()) << "no capture after it stopped";
    relay.finish();
    EXPECT_EQ(relay.received().joined(), big);
}

struct Scenario {
    const char* name;
    ProviderKind kind;
    std::string body;
};

TEST_F(SseRelayTest, EveryFailedOperationEndsInAnOutcomeAndNeverInSuccess) {
    std::string anthropic = kMessageStart + kTextStart;
    for (int i = 0; i < 6; ++i) anthropic += text_delta("w" + std::to_string(i));
    anthropic += kBlockStop + kMessageDelta + kMessageStop;
    std::string openai;
    for (int i = 0; i < 8; ++i) openai += data_event(R"({"n":)" + std::to_string(i) + "}");
    openai += "data: [DONE]\n\n";
    const std::vector<Scenario> scenarios = {
        {"openai", ProviderKind::openai, chunked({openai.substr(0, 50), openai.substr(50)})},
        {"anthropic", ProviderKind::anthropic,
         chunked({anthropic.substr(0, 300), anthropic.substr(300)})},
    };
    for (const auto& scenario : scenarios) {
        SCOPED_TRACE(scenario.name);
        // Without failures: every operation of both streams counted.
        Relay clean(kChunkedHead, {.kind = scenario.kind});
        clean.upstream.read_size(16);
        clean.pump(scenario.body);
        ASSERT_TRUE(clean.state->complete());
        ASSERT_TRUE(clean.finish());
        Received whole = clean.received();
        whole.chunks = timeless(whole.chunks);
        const std::size_t operations = clean.operations();
        ASSERT_GT(operations, 10u);

        for (std::size_t n = 1; n <= operations + 1; ++n) {
            SCOPED_TRACE(n);
            Relay relay(kChunkedHead,
                        {.kind = scenario.kind, .upstream_fail_at = n, .shared_count = true});
            relay.upstream.read_size(16);
            relay.pump(scenario.body);
            EXPECT_EQ(relay.outcomes(), 1) << "exactly one defined outcome";
            const bool kept = relay.finish();
            Received received = relay.received();
            received.chunks = timeless(received.chunks);
            if (n > operations) {
                EXPECT_TRUE(relay.state->complete());
                EXPECT_TRUE(kept);
                EXPECT_EQ(received.chunks, whole.chunks);
                EXPECT_TRUE(received.last);
                continue;
            }
            EXPECT_FALSE(kept) << "success reported although an operation failed";
            // What reached the client is the clean run's chunks up to the failure, then at
            // most the failure's error event.
            std::size_t same = 0;
            while (same < received.chunks.size() && same < whole.chunks.size() &&
                   received.chunks[same] == whole.chunks[same]) {
                ++same;
            }
            ASSERT_LE(received.chunks.size(), same + 1);
            if (same < received.chunks.size()) {
                ASSERT_TRUE(relay.state->failure);
                EXPECT_EQ(received.chunks[same],
                          relay_detail::stream_failure_event(*relay.state->failure));
            }
            if (relay.state->complete()) {
                EXPECT_EQ(received.chunks, whole.chunks);
                EXPECT_FALSE(received.last) << "only the last chunk's write may have failed";
            }
        }
    }
}

}  // namespace
}  // namespace turnout::gateway
