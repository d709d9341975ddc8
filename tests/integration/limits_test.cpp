// Request limits and malformed input: each is answered by the gateway itself, with the right
// status and OpenAI error code, and never reaches the upstream.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

std::string raw_head(const std::string& extra_headers, const std::string& version = "HTTP/1.1") {
    return "POST /v1/chat/completions " + version +
           "\r\nHost: gw\r\nContent-Type: application/json\r\n" + extra_headers + "\r\n";
}

std::string chunk(const std::string& data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
}

/// A valid chat body padded to about `size` bytes (a long user message).
std::string body_of_size(std::size_t size) {
    std::string body = chat_body("smart", false, "");
    std::size_t pad = size > body.size() ? size - body.size() : 0;
    return chat_body("smart", false, std::string(pad, 'a'));
}

class LimitsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(stack_.start([](GatewayConfig& c) {
            c.limit("max_body_bytes", "1KiB");
            c.limit("max_header_bytes", "4KiB");
            c.limit("client_timeout", "500ms");
        }));
    }

    void TearDown() override {
        if (!stack_.sim().started()) return;
        EXPECT_EQ(stack_.sim().stat("requests"), 0) << "the request reached the upstream";
    }

    /// Sends raw bytes on a new connection and reads one response (the send may fail once the
    /// gateway has answered and closed: the answer is read anyway).
    std::optional<HttpResponse> send_raw(RawConnection& client, const std::string& bytes) {
        EXPECT_TRUE(client.connected()) << client.error();
        client.send(bytes);
        return client.read_response(kWait);
    }

    GatewayStack stack_;
};

TEST_F(LimitsTest, BodyOverMaxBodyBytesWithContentLengthIs413) {
    std::string body = body_of_size(4096);
    RawConnection client(stack_.api_port());
    auto response = send_raw(
        client, raw_head("Content-Length: " + std::to_string(body.size()) + "\r\n") + body);
    EXPECT_TRUE(is_openai_error(response, 413, "request_too_large", "invalid_request_error"));
    EXPECT_TRUE(client.wait_closed_by_peer(kWait));
}

TEST_F(LimitsTest, BodyOverMaxBodyBytesChunkedIs413) {
    std::string body = body_of_size(4096);
    std::string chunks;
    for (std::size_t at = 0; at < body.size(); at += 512) chunks += chunk(body.substr(at, 512));
    chunks += "0\r\n\r\n";
    RawConnection client(stack_.api_port());
    auto response = send_raw(client, raw_head("Transfer-Encoding: chunked\r\n") + chunks);
    EXPECT_TRUE(is_openai_error(response, 413, "request_too_large"));
    EXPECT_TRUE(client.wait_closed_by_peer(kWait));
}

TEST_F(LimitsTest, BodyJustUnderTheLimitIsAccepted) {
    // The limit is not off by a lot in the other direction either.
    std::string body = body_of_size(900);
    RawConnection client(stack_.api_port());
    auto response = send_raw(
        client, raw_head("Content-Length: " + std::to_string(body.size()) + "\r\n") + body);
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(stack_.sim().stat("requests"), 1);
    ASSERT_TRUE(stack_.sim().reset());
}

TEST_F(LimitsTest, HeaderBlockOverMaxHeaderBytesIs431) {
    std::string body = chat_body("smart");
    RawConnection client(stack_.api_port());
    auto response =
        send_raw(client, raw_head("x-big: " + std::string(8192, 'h') +
                                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n") +
                             body);
    EXPECT_TRUE(is_openai_error(response, 431, "headers_too_large"));
    EXPECT_TRUE(client.wait_closed_by_peer(kWait));
}

// The client never finishes its head: only client_timeout answers, and the client's wait
// (kTimeoutWait) is below the default client_timeout (30 s), so the 408 is the configured one.
TEST_F(LimitsTest, IncompleteHeadersAre408WithinClientTimeout) {
    RawConnection client(stack_.api_port());
    auto started = Clock::now();
    ASSERT_TRUE(client.send("POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: "));
    auto response = client.read_response(kTimeoutWait);
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
    EXPECT_TRUE(is_openai_error(response, 408, "request_timeout"))
        << "client_timeout (500ms) not applied";
    EXPECT_GE(elapsed, 400) << "answered before client_timeout (500ms)";
    EXPECT_TRUE(client.wait_closed_by_peer(kWait));
}

TEST_F(LimitsTest, HeadersTrickledSlowlyAre408) {
    // A slowloris client: one byte every 100 ms resets no idle timer; the whole request must
    // arrive within client_timeout. The head would take the client over a minute to trickle,
    // and it trickles for kTimeoutWait at most: the gateway stopping it within that wait can
    // only be the 500ms client_timeout, neither an idle timer (each gap is 100 ms) nor the
    // default client_timeout (30 s).
    std::string head =
        raw_head("Content-Length: 2\r\nx-padding: " + std::string(600, 'p') + "\r\n");
    RawConnection client(stack_.api_port());
    const auto deadline = Clock::now() + kTimeoutWait;
    bool stopped_by_the_gateway = false;
    for (std::size_t i = 0; i < head.size() && Clock::now() < deadline; ++i) {
        // Paces the client and watches for the answer at the same time (kept in the buffer).
        if (!client.send(head.substr(i, 1)) ||
            client.fill(Clock::now() + Millis(100)) != ReadStatus::timeout) {
            stopped_by_the_gateway = true;
            break;
        }
    }
    EXPECT_TRUE(stopped_by_the_gateway)
        << "no answer while the head trickled in: client_timeout (500ms) not applied";
    auto response = client.read_response(kWait);
    EXPECT_TRUE(is_openai_error(response, 408, "request_timeout"));
    EXPECT_TRUE(client.wait_closed_by_peer(kWait));
}

TEST_F(LimitsTest, IncompleteBodyIs408) {
    RawConnection client(stack_.api_port());
    ASSERT_TRUE(client.send(raw_head("Content-Length: 100\r\n") + "{\"model\":"));
    auto response = client.read_response(kWait);
    EXPECT_TRUE(is_openai_error(response, 408, "request_timeout"));
    EXPECT_TRUE(client.wait_closed_by_peer(kWait));
}

TEST_F(LimitsTest, BadJsonIs400InvalidJson) {
    auto response = stack_.gateway().chat("{\"model\": \"smart\", \"messages\": [");
    EXPECT_TRUE(is_openai_error(response, 400, "invalid_json", "invalid_request_error"));
    ASSERT_TRUE(response);
    EXPECT_FALSE(response->header("x-request-id").empty());
}

TEST_F(LimitsTest, JsonThatIsNotAnObjectIs400InvalidJson) {
    EXPECT_TRUE(is_openai_error(stack_.gateway().chat("[1, 2, 3]"), 400, "invalid_json"));
    EXPECT_TRUE(is_openai_error(stack_.gateway().chat(""), 400, "invalid_json"));
}

TEST_F(LimitsTest, MissingModelIs400) {
    auto response = stack_.gateway().chat(R"({"messages":[{"role":"user","content":"hi"}]})");
    EXPECT_TRUE(is_openai_error(response, 400, "missing_model", "invalid_request_error"));
    auto numeric = stack_.gateway().chat(R"({"model":42,"messages":[]})");
    EXPECT_TRUE(is_openai_error(numeric, 400, "missing_model"));
}

TEST_F(LimitsTest, UnknownModelIs404ModelNotFound) {
    auto response = stack_.gateway().chat(chat_body("no-such-model"));
    EXPECT_TRUE(is_openai_error(response, 404, "model_not_found", "invalid_request_error"));
    ASSERT_TRUE(response);
    EXPECT_FALSE(response->header("x-request-id").empty());
}

TEST_F(LimitsTest, UnknownPathIs404) {
    auto response = stack_.gateway().request("GET", "/v1/nothing-here");
    EXPECT_TRUE(is_openai_error(response, 404, "not_found"));
    auto post = stack_.gateway().request(
        "POST", "/v2/chat/completions", {{"Content-Type", "application/json"}}, chat_body("smart"));
    EXPECT_TRUE(is_openai_error(post, 404, "not_found"));
}

TEST_F(LimitsTest, GetOnChatCompletionsIs405) {
    auto response = stack_.gateway().request("GET", "/v1/chat/completions");
    EXPECT_TRUE(is_openai_error(response, 405, "method_not_allowed"));
}

TEST_F(LimitsTest, ErrorAnswersKeepTheConnectionUsable) {
    // A 404 for an unknown model is an ordinary answer, not a reason to close.
    RawConnection client(stack_.api_port());
    ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                    {{"Content-Type", "application/json"}},
                                    chat_body("no-such-model")));
    auto first = client.read_response(kWait);
    EXPECT_TRUE(is_openai_error(first, 404, "model_not_found"));
    ASSERT_TRUE(client.send_request("GET", "/v1/models", {}));
    auto second = client.read_response(kWait);
    ASSERT_TRUE(second) << client.error();
    EXPECT_EQ(second->status, 200);
}

// Request smuggling defences: every ambiguous framing is a 400 and the connection is closed.
struct FramingCase {
    const char* name;
    std::string request;
};

class FramingTest : public LimitsTest, public ::testing::WithParamInterface<FramingCase> {};

std::vector<FramingCase> framing_cases() {
    std::string body = chat_body("smart");
    std::string length = std::to_string(body.size());
    std::string chunked = chunk(body) + "0\r\n\r\n";
    return {
        {"ContentLengthAndTransferEncoding",
         raw_head("Content-Length: " + std::to_string(chunked.size()) +
                  "\r\nTransfer-Encoding: chunked\r\n") +
             chunked},
        {"TransferEncodingGzip", raw_head("Transfer-Encoding: gzip\r\n") + body},
        {"TransferEncodingGzipChunked", raw_head("Transfer-Encoding: gzip, chunked\r\n") + chunked},
        {"ChunkedInHttp10", raw_head("Transfer-Encoding: chunked\r\n", "HTTP/1.0") + chunked},
        {"DuplicateContentLength",
         raw_head("Content-Length: " + length + "\r\nContent-Length: " + length + "\r\n") + body},
        {"ContentLengthList",
         raw_head("Content-Length: " + length + ", " + length + "\r\n") + body},
        {"ContentLengthNotANumber", raw_head("Content-Length: abc\r\n") + body},
    };
}

TEST_P(FramingTest, IsRejectedWith400AndClosed) {
    RawConnection client(stack_.api_port());
    auto response = send_raw(client, GetParam().request);
    EXPECT_TRUE(is_openai_error(response, 400, "bad_request", "invalid_request_error"));
    EXPECT_TRUE(client.wait_closed_by_peer(kWait)) << "the connection stayed open";
}

INSTANTIATE_TEST_SUITE_P(Smuggling, FramingTest, ::testing::ValuesIn(framing_cases()),
                         [](const ::testing::TestParamInfo<FramingCase>& param_info) {
                             return std::string(param_info.param.name);
                         });

}  // namespace
}  // namespace turnout::test
