// The request reader on beast::test::stream: each limit and check of the reading phase with
// its exact outcome, and every stream operation failed in turn (test::fail_count).

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/error.hpp>
#include <boost/beast/_experimental/test/fail_count.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/logging.hpp"
#include "gateway/request_reader_impl.hpp"

namespace turnout::gateway {
namespace {

namespace test = beast::test;
using Kind = ReadOutcome::Kind;

constexpr ReadLimits kLimits{1024, 4096};
constexpr std::size_t kNoFailure = std::numeric_limits<std::size_t>::max();

asio::awaitable<void> run_reader(test::stream* stream, beast::flat_buffer* buffer,
                                 http::request_parser<http::string_body>* parser, ReadLimits limits,
                                 const bool* timed_out, RequestRecord* record,
                                 std::optional<ReadOutcome>* outcome) {
    *outcome = co_await read_request(stream, buffer, parser, limits, timed_out, record);
}

/// One connection: the gateway's end (`server`, read by the reader) and the client's, which
/// receives what the reader writes.
struct Connection {
    explicit Connection(std::string_view input, ReadLimits read_limits = kLimits,
                        std::size_t fail_at = kNoFailure)
        : fail(fail_at), server(io, fail), client(io), limits(read_limits) {
        server.connect(client);
        server.append(input);
    }
    /// The input already in the buffer, as Session::run's first read of a connection leaves
    /// it: Beast then parses the whole head at once.
    static std::unique_ptr<Connection> buffered(std::string_view input) {
        auto connection = std::make_unique<Connection>("");
        const auto size = input.size();
        connection->buffer.commit(
            asio::buffer_copy(connection->buffer.prepare(size), asio::buffer(input.data(), size)));
        return connection;
    }

    /// Starts the reader and runs until it is waiting for the stream (or done).
    void start() {
        asio::co_spawn(io,
                       run_reader(&server, &buffer, &parser, limits, &timed_out, &record, &outcome),
                       [](std::exception_ptr error) {
                           if (error) std::rethrow_exception(error);
                       });
        io.poll();
    }
    /// Reads a whole exchange: the input, then the client's end of the stream (EOF).
    const ReadOutcome& read() {
        server.close_remote();
        start();
        io.run();
        EXPECT_TRUE(outcome.has_value()) << "the reader never finished";
        return outcome.value();
    }
    /// What the caller's request timer does: the flag, then the stream cancelled.
    const ReadOutcome& time_out() {
        start();
        EXPECT_FALSE(outcome.has_value()) << "the reader did not wait for more bytes";
        timed_out = true;
        server.close();
        io.run();
        return outcome.value();
    }
    const http::request<http::string_body>& request() { return parser.get(); }
    std::vector<std::string> field_names() {
        std::vector<std::string> names;
        for (const auto& field : request()) names.emplace_back(field.name_string());
        return names;
    }
    std::size_t operations() const { return server.nread() + server.nwrite(); }

    asio::io_context io;
    test::fail_count fail;
    test::stream server;
    test::stream client;
    ReadLimits limits;
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    RequestRecord record;
    bool timed_out = false;
    std::optional<ReadOutcome> outcome;
};

class RequestReaderTest : public ::testing::Test {
  protected:
    // The refusals log warnings: the logger must exist; errors only, to keep the output short.
    static void SetUpTestSuite() { base::init_logging({.level = "error", .format = "text"}); }
};

std::string post(std::string_view body, std::string_view extra_fields = "") {
    return "POST /v1/chat/completions?trace=1 HTTP/1.1\r\nHost: gw\r\n" +
           std::string(extra_fields) + "Content-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + std::string(body);
}

std::string chunked(std::string_view head_fields, std::string_view chunks) {
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n" + std::string(head_fields) +
           "Transfer-Encoding: chunked\r\n\r\n" + std::string(chunks);
}

void expect_answer(const ReadOutcome& outcome, errc code, std::string_view message) {
    EXPECT_EQ(outcome.kind, Kind::answer);
    EXPECT_EQ(outcome.code, code);
    EXPECT_EQ(outcome.message, message);
    EXPECT_TRUE(outcome.close);
}

TEST_F(RequestReaderTest, AWholeRequestFillsTheRecordAndWritesNothing) {
    Connection connection(post(R"({"model":"m"})", "X-Request-Id: client-id.42\r\n"));
    const ReadOutcome& outcome = connection.read();
    EXPECT_EQ(outcome.kind, Kind::request);
    EXPECT_FALSE(outcome.error);
    EXPECT_EQ(connection.request().body(), R"({"model":"m"})");
    EXPECT_EQ(connection.record.method, "POST");
    EXPECT_EQ(connection.record.path, "/v1/chat/completions");
    EXPECT_EQ(connection.record.request_id, "client-id.42");
    EXPECT_TRUE(connection.record.request_id_from_client);
    EXPECT_EQ(connection.record.bytes_in, 13u);
    EXPECT_EQ(connection.client.str(), "");
}

TEST_F(RequestReaderTest, AnUnacceptableRequestIdIsReplaced) {
    for (const std::string& id : {std::string("has space"), std::string(129, 'a')}) {
        Connection connection(post("{}", "X-Request-Id: " + id + "\r\n"));
        ASSERT_EQ(connection.read().kind, Kind::request);
        EXPECT_FALSE(connection.record.request_id_from_client);
        EXPECT_NE(connection.record.request_id, id);
        EXPECT_EQ(connection.record.request_id.size(), 32u) << connection.record.request_id;
    }
    Connection longest(post("{}", "X-Request-Id: " + std::string(128, 'a') + "\r\n"));
    ASSERT_EQ(longest.read().kind, Kind::request);
    EXPECT_TRUE(longest.record.request_id_from_client);
}

TEST_F(RequestReaderTest, PipelinedRequestsAreReadOneAtATime) {
    Connection connection(post("first") + post("second"));
    connection.server.close_remote();
    connection.start();
    connection.io.run();
    ASSERT_EQ(connection.outcome->kind, Kind::request);
    EXPECT_EQ(connection.request().body(), "first");
    // The second request waits in the buffer for the next parser.
    http::request_parser<http::string_body> next;
    RequestRecord record;
    std::optional<ReadOutcome> outcome;
    connection.io.restart();
    asio::co_spawn(connection.io,
                   run_reader(&connection.server, &connection.buffer, &next, kLimits, nullptr,
                              &record, &outcome),
                   [](std::exception_ptr error) {
                       if (error) std::rethrow_exception(error);
                   });
    connection.io.run();
    ASSERT_EQ(outcome->kind, Kind::request);
    EXPECT_EQ(next.get().body(), "second");
}

TEST_F(RequestReaderTest, AFieldOverTheHeaderLimitIs431) {
    Connection connection(post("{}", "X-Big: " + std::string(2000, 'b') + "\r\n"));
    const ReadOutcome& outcome = connection.read();
    expect_answer(outcome, errc::headers_too_large, "request header block too large");
    EXPECT_EQ(outcome.error, http::error::header_limit);
    EXPECT_FALSE(connection.record.request_id.empty());
    EXPECT_EQ(connection.client.str(), "");
}

TEST_F(RequestReaderTest, RequestLineAndFieldsTogetherOverTheHeaderLimitAre431) {
    // Parsed at once, Beast bounds the request line and the fields each by the limit; here each
    // is under it, their sum is not.
    const std::string input = "POST /v1/" + std::string(600, 'p') + " HTTP/1.1\r\nHost: gw\r\n" +
                              "X-Fill: " + std::string(600, 'f') + "\r\nContent-Length: 0\r\n\r\n";
    const auto connection = Connection::buffered(input);
    const ReadOutcome& outcome = connection->read();
    expect_answer(outcome, errc::headers_too_large, "request header block too large");
    EXPECT_FALSE(outcome.error) << outcome.error.message();
    EXPECT_EQ(connection->record.path, "/v1/" + std::string(600, 'p'));
    EXPECT_EQ(connection->client.str(), "");

    // Arriving in pieces, the same head is refused by Beast itself.
    Connection trickled(input);
    trickled.server.read_size(100);
    const ReadOutcome& trickled_outcome = trickled.read();
    expect_answer(trickled_outcome, errc::headers_too_large, "request header block too large");
    EXPECT_EQ(trickled_outcome.error, http::error::header_limit);

    // At the limit exactly: read.
    std::string fits = "GET / HTTP/1.1\r\nHost: gw\r\nX-Fill: ";
    fits += std::string(kLimits.max_header_bytes - fits.size() - 4, 'f') + "\r\n\r\n";
    ASSERT_EQ(fits.size(), kLimits.max_header_bytes);
    EXPECT_EQ(Connection::buffered(fits)->read().kind, Kind::request);
}

TEST_F(RequestReaderTest, AHeadLongerThanTheBufferIs431) {
    // A head that never ends overflows the buffer (header limit plus one read) first.
    std::string input = "GET / HTTP/1.1\r\nHost: gw\r\n";
    while (input.size() < request_buffer_limit(kLimits) + 100) input += "X-A: b\r\n";
    Connection connection(input);
    const ReadOutcome& outcome = connection.read();
    expect_answer(outcome, errc::headers_too_large, "request header block too large");
    EXPECT_TRUE(outcome.error == http::error::buffer_overflow ||
                outcome.error == http::error::header_limit)
        << outcome.error.message();
}

TEST_F(RequestReaderTest, ATargetOver8KiBIs414) {
    const ReadLimits roomy{64 * 1024, 4096};
    const std::string at_limit = "/v1/" + std::string(kMaxTargetBytes - 4, 't');
    Connection fits("GET " + at_limit + " HTTP/1.1\r\nHost: gw\r\n\r\n", roomy);
    EXPECT_EQ(fits.read().kind, Kind::request);

    Connection connection("GET " + at_limit + "t HTTP/1.1\r\nHost: gw\r\n\r\n", roomy);
    const ReadOutcome& outcome = connection.read();
    expect_answer(outcome, errc::uri_too_long, "request target too long");
    EXPECT_FALSE(outcome.error);
}

struct FramingCase {
    std::string input;
    errc code;
    std::string message;
};

TEST_F(RequestReaderTest, AmbiguousFramingIsRefused) {
    const std::vector<FramingCase> cases = {
        {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", errc::bad_request, "missing Host field"},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", errc::bad_request, "multiple Host fields"},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", errc::bad_request,
         "Transfer-Encoding in HTTP/1.0"},
        {"POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
         errc::bad_request, "Transfer-Encoding is not exactly chunked"},
    };
    for (const auto& framing : cases) {
        Connection connection(framing.input);
        const ReadOutcome& outcome = connection.read();
        SCOPED_TRACE(framing.input);
        expect_answer(outcome, framing.code, framing.message);
        EXPECT_FALSE(outcome.error) << outcome.error.message();
    }
}

TEST_F(RequestReaderTest, MalformedHttpIs400WithBeastsReason) {
    const std::vector<std::pair<std::string, http::error>> cases = {
        {"GET / HTTP/1.1\r\nHost: gw\r\nBad Field: x\r\n\r\n", http::error::bad_field},
        {"G@T / HTTP/1.1\r\nHost: gw\r\n\r\n", http::error::bad_method},
        {"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 1x\r\n\r\n",
         http::error::bad_content_length},
        {"POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         http::error::bad_chunk},
    };
    for (const auto& [input, error] : cases) {
        Connection connection(input);
        const ReadOutcome& outcome = connection.read();
        SCOPED_TRACE(input);
        EXPECT_EQ(outcome.error, error) << outcome.error.message();
        expect_answer(outcome, errc::bad_request,
                      "malformed HTTP request: " + http::make_error_code(error).message());
    }
}

TEST_F(RequestReaderTest, AVersionOtherThan10Or11Is505) {
    // Beast refuses them before the framing checks see the head.
    for (const std::string version : {"HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/x.1"}) {
        Connection connection("GET / " + version + "\r\nHost: gw\r\n\r\n");
        const ReadOutcome& outcome = connection.read();
        SCOPED_TRACE(version);
        expect_answer(outcome, errc::version_not_supported, "HTTP version not supported");
        EXPECT_EQ(outcome.error, http::error::bad_version);
    }
}

TEST_F(RequestReaderTest, Expect100ContinueWritesTheInterimResponseBeforeTheBody) {
    Connection connection(post("{}", "Expect: 100-continue\r\n"));
    const ReadOutcome& outcome = connection.read();
    ASSERT_EQ(outcome.kind, Kind::request);
    EXPECT_EQ(connection.client.str(), "HTTP/1.1 100 Continue\r\n\r\n");
    EXPECT_EQ(connection.request().body(), "{}");
    EXPECT_EQ(connection.server.nwrite(), 1u);
}

TEST_F(RequestReaderTest, Expect100ContinueIsNotAnsweredForARefusedHead) {
    Connection connection("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}");
    expect_answer(connection.read(), errc::bad_request, "missing Host field");
    EXPECT_EQ(connection.client.str(), "");
}

TEST_F(RequestReaderTest, ABodyOverTheLimitIs413) {
    Connection at_limit(post(std::string(kLimits.max_body_bytes, 'x')));
    EXPECT_EQ(at_limit.read().kind, Kind::request);
    EXPECT_EQ(at_limit.record.bytes_in, kLimits.max_body_bytes);

    Connection declared(post(std::string(kLimits.max_body_bytes + 1, 'x')));
    const ReadOutcome& outcome = declared.read();
    expect_answer(outcome, errc::request_too_large, "request body too large");
    EXPECT_EQ(outcome.error, http::error::body_limit);

    // Chunked: no length up front, refused once the chunks pass the limit.
    const std::string chunk = std::string(1000, 'c');
    std::string chunks;
    for (int i = 0; i < 5; ++i) chunks += "3e8\r\n" + chunk + "\r\n";
    Connection streamed(chunked("", chunks + "0\r\n\r\n"));
    const ReadOutcome& chunked_outcome = streamed.read();
    expect_answer(chunked_outcome, errc::request_too_large, "request body too large");
    EXPECT_EQ(chunked_outcome.error, http::error::body_limit);
}

TEST_F(RequestReaderTest, ADeclaredBodyOverTheLimitIs413WithoutTheInterimResponse) {
    // Beast checks Content-Length against the limit with the head: no 100 invites the body.
    Connection connection(
        post(std::string(kLimits.max_body_bytes + 1, 'x'), "Expect: 100-continue\r\n"));
    const ReadOutcome& outcome = connection.read();
    expect_answer(outcome, errc::request_too_large, "request body too large");
    EXPECT_EQ(outcome.error, http::error::body_limit);
    EXPECT_EQ(connection.client.str(), "");

    // Chunked, the size is known only as the chunks come: the 100 was sent.
    Connection streamed(
        chunked("Expect: 100-continue\r\n", "1001\r\n" + std::string(4097, 'x') + "\r\n0\r\n\r\n"));
    expect_answer(streamed.read(), errc::request_too_large, "request body too large");
    EXPECT_EQ(streamed.client.str(), "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST_F(RequestReaderTest, TrailersAreDroppedFromTheFields) {
    // Beast files a trailer that repeats a head field's name next to that field, not at the
    // end: the head must come back whole, in its order, with nothing of the trailers.
    Connection connection(chunked("Authorization: Bearer head\r\nX-Request-Id: head-id\r\n",
                                  "2\r\n{}\r\n0\r\nX-Trailer-Evil: 1\r\n"
                                  "Authorization: Bearer trailer\r\nHost: evil\r\n\r\n"));
    const ReadOutcome& outcome = connection.read();
    ASSERT_EQ(outcome.kind, Kind::request);
    const auto& request = connection.request();
    EXPECT_EQ(request.body(), "{}");
    EXPECT_EQ(
        connection.field_names(),
        (std::vector<std::string>{"Host", "Authorization", "X-Request-Id", "Transfer-Encoding"}));
    EXPECT_EQ(request.count(http::field::authorization), 1u);
    EXPECT_EQ(request[http::field::authorization], "Bearer head");
    EXPECT_EQ(request.count(http::field::host), 1u);
    EXPECT_EQ(request[http::field::host], "gw");
    EXPECT_EQ(request.count("X-Trailer-Evil"), 0u);
    EXPECT_EQ(request.method(), http::verb::post);
    EXPECT_EQ(request.target(), "/v1/chat/completions");
    EXPECT_EQ(request.version(), 11u);
    EXPECT_EQ(connection.record.request_id, "head-id");
    EXPECT_EQ(connection.record.bytes_in, 2u);
}

TEST_F(RequestReaderTest, LongChunkExtensionsOrTrailersAre400) {
    const std::string too_long(request_buffer_limit(kLimits) + 100, 'e');
    Connection extension(chunked("", "2;ext=" + too_long + "\r\n{}\r\n0\r\n\r\n"));
    const ReadOutcome& extension_outcome = extension.read();
    expect_answer(extension_outcome, errc::bad_request, "chunk extensions or trailers too long");
    EXPECT_EQ(extension_outcome.error, http::error::buffer_overflow);

    std::string trailers;
    while (trailers.size() < too_long.size()) trailers += "X-T: " + std::string(1000, 't') + "\r\n";
    Connection trailer(chunked("", "2\r\n{}\r\n0\r\n" + trailers + "\r\n"));
    const ReadOutcome& trailer_outcome = trailer.read();
    expect_answer(trailer_outcome, errc::bad_request, "chunk extensions or trailers too long");
    EXPECT_EQ(trailer_outcome.error, http::error::buffer_overflow);
}

TEST_F(RequestReaderTest, APeerThatLeavesIsOwedNothing) {
    const std::vector<std::pair<std::string, http::error>> cases = {
        {"", http::error::end_of_stream},
        {"POST / HTTP/1.1\r\nHo", http::error::partial_message},
        {post("{\"model\":\"m\"}").substr(0, 60), http::error::partial_message},
    };
    for (const auto& [input, error] : cases) {
        Connection connection(input);
        const ReadOutcome& outcome = connection.read();
        SCOPED_TRACE(input);
        EXPECT_EQ(outcome.kind, Kind::gone);
        EXPECT_EQ(outcome.error, error) << outcome.error.message();
        EXPECT_FALSE(connection.record.request_id.empty());
        EXPECT_EQ(connection.client.str(), "");
    }
}

TEST_F(RequestReaderTest, TheCallersTimerTurnsAWaitingReadInto408) {
    for (const std::string& input : {std::string("POST / HTTP/1.1\r\nHost: g"),
                                     post("{\"model\":\"m\"}").substr(0, 70), std::string()}) {
        SCOPED_TRACE(input);
        Connection connection(input);
        const ReadOutcome& outcome = connection.time_out();
        expect_answer(outcome, errc::request_timeout, "request not received in time");
        EXPECT_EQ(outcome.error, asio::error::operation_aborted);
        EXPECT_FALSE(connection.record.request_id.empty());
    }
    // Cancelled without the timer's flag: a stream closed under the reader is nobody to answer.
    Connection connection("POST / HTTP/1.1\r\nHost: g");
    connection.start();
    connection.server.close();
    connection.io.run();
    ASSERT_TRUE(connection.outcome);
    EXPECT_EQ(connection.outcome->kind, Kind::gone);
    EXPECT_EQ(connection.outcome->error, asio::error::operation_aborted);
}

// Every stream operation of a whole exchange (reads a few bytes at a time, the interim
// response, a chunked body with trailers) failed in turn: the reader answers nobody, and it
// reports the request only when no operation failed.
TEST_F(RequestReaderTest, EveryFailedOperationEndsTheReadingWithNothingToAnswer) {
    const std::string input = chunked("Expect: 100-continue\r\nX-Request-Id: fail-loop\r\n",
                                      "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Late: 1\r\n\r\n");
    Connection baseline(input);
    baseline.server.read_size(7);
    ASSERT_EQ(baseline.read().kind, Kind::request);
    const std::size_t operations = baseline.operations();
    ASSERT_GT(operations, 10u);

    // fail_count(n) fails the n-th operation (the first for n = 0 and 1) and all after it.
    std::size_t n = 0;
    for (; n < operations + 10; ++n) {
        SCOPED_TRACE("fail_count " + std::to_string(n));
        Connection connection(input, kLimits, n);
        connection.server.read_size(7);
        const ReadOutcome& outcome = connection.read();
        if (n <= operations) {
            EXPECT_EQ(outcome.kind, Kind::gone);
            EXPECT_EQ(outcome.error, test::error::test_failure) << outcome.error.message();
            EXPECT_FALSE(connection.record.request_id.empty());
            continue;
        }
        ASSERT_EQ(outcome.kind, Kind::request);
        EXPECT_FALSE(outcome.error);
        EXPECT_EQ(connection.request().body(), "hello world");
        EXPECT_EQ(connection.field_names(), baseline.field_names());
        EXPECT_EQ(connection.client.str(), "HTTP/1.1 100 Continue\r\n\r\n");
        EXPECT_EQ(connection.record.request_id, "fail-loop");
        break;
    }
    EXPECT_EQ(n, operations + 1);
}

}  // namespace
}  // namespace turnout::gateway
