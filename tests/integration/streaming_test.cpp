// Streaming (SSE) relay: frames reach the client while the upstream is still producing them,
// all of them arrive, the stream ends with [DONE]; tool calls in both modes.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

constexpr const char* kToolsRequest = R"({
  "model": "smart",
  "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
  "tools": [{
    "type": "function",
    "function": {
      "name": "get_weather",
      "description": "Current weather for a city",
      "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"]
      }
    }
  }]STREAM
})";

std::string tools_request(bool stream) {
    std::string body = kToolsRequest;
    body.replace(body.find("STREAM"), 6, stream ? ",\n  \"stream\": true" : "");
    return body;
}

/// Sends a streaming chat request on `client` and reads the response head.
std::optional<HttpResponse> start_stream(RawConnection& client, SseStreamReader& reader,
                                         const std::string& body, const Headers& extra = {}) {
    Headers headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
    headers.insert(headers.end(), extra.begin(), extra.end());
    if (!client.send_request("POST", "/v1/chat/completions", headers, body)) return std::nullopt;
    return reader.read_head(kWait);
}

TEST(StreamingTest, FramesArriveWhileTheUpstreamIsStillStreaming) {
    // The upstream sends its head and first content frame, then holds the other 29 until the
    // test opens its gate: a frame that reaches the client before that was relayed while the
    // upstream was still producing, however slow the machine.
    constexpr std::size_t kFrames = 30;
    GatedUpstream upstream(kFrames, 1);
    GatewayOptions options;
    options.yaml = GatewayConfig::for_simulator(upstream.base_url()).yaml();
    GatewayProcess gateway(options);
    ASSERT_TRUE(gateway.start());

    RawConnection client(gateway.api_port());
    ASSERT_TRUE(client.connected()) << client.error();
    SseStreamReader reader(client);
    auto head = start_stream(client, reader, chat_body("smart", true));
    ASSERT_TRUE(head) << client.error();
    ASSERT_EQ(head->status, 200);
    EXPECT_NE(head->header("content-type").find("text/event-stream"), std::string::npos);
    EXPECT_EQ(head->header("x-turnout-route"), "smart");
    EXPECT_EQ(head->header("x-turnout-target"), "sim/sim-large");
    EXPECT_FALSE(head->header("x-request-id").empty());

    std::string content;
    std::optional<std::string> event;
    int frames = 0;
    while ((event = reader.next_event(kWait))) {
        ++frames;
        ASSERT_NE(*event, "[DONE]") << "[DONE] before any content";
        content += delta_content(*event);
        if (!content.empty()) break;
    }
    ASSERT_FALSE(content.empty()) << "no content frame; body so far: " << reader.body_so_far();

    // The first content frame is here while the upstream holds the rest.
    EXPECT_EQ(upstream.answers_finished(), 0);
    upstream.open_gate();

    bool done = false;
    while ((event = reader.next_event(kWait))) {
        ASSERT_FALSE(done) << "frame after [DONE]: " << *event;
        if (*event == "[DONE]") {
            done = true;
            continue;
        }
        ++frames;
        auto doc = parse_json(*event);
        ASSERT_FALSE(doc.HasParseError()) << "frame is not JSON: " << *event;
        EXPECT_EQ(json_string(doc, "object"), "chat.completion.chunk") << *event;
        content += delta_content(*event);
    }
    EXPECT_TRUE(done) << "no [DONE]; body: " << reader.body_so_far();
    EXPECT_EQ(reader.state(), SseStreamReader::State::ended) << reader.body_so_far();
    EXPECT_GE(frames, static_cast<int>(kFrames)) << "every token is its own frame upstream";

    // The upstream's text, every frame in order.
    EXPECT_EQ(content, GatedUpstream::text(kFrames));
    EXPECT_TRUE(upstream.wait_for_answers_finished(1));
}

TEST(StreamingTest, StreamedAnswerMatchesTheNonStreamedOne) {
    GatewayStack stack({"--tokens", "12", "--ttft", "0ms"});
    ASSERT_TRUE(stack.start());

    auto plain = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(plain);
    ASSERT_EQ(plain->status, 200) << plain->body;
    auto expected = json_string(parse_json(plain->body), "choices/0/message/content");
    ASSERT_TRUE(expected) << plain->body;

    RawConnection client(stack.api_port());
    SseStreamReader reader(client);
    auto head = start_stream(client, reader, chat_body("smart", true));
    ASSERT_TRUE(head);
    ASSERT_EQ(head->status, 200);
    auto events = reader.read_all(kWait);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "[DONE]");
    std::string content;
    for (const auto& e : events) content += delta_content(e);
    EXPECT_EQ(content, *expected);

    // The upstream was asked for the target model, streaming.
    auto recorded = stack.sim().last_request();
    ASSERT_TRUE(recorded);
    auto body = parse_json(recorded->body);
    EXPECT_EQ(json_string(body, "model"), "sim-large");
    const auto* stream = json_at(body, "stream");
    EXPECT_TRUE(stream && stream->IsBool() && stream->GetBool()) << recorded->body;
}

TEST(StreamingTest, KeepAliveAfterAStream) {
    GatewayStack stack({"--tokens", "5", "--ttft", "0ms"});
    ASSERT_TRUE(stack.start());
    RawConnection client(stack.api_port());
    for (int i = 0; i < 3; ++i) {
        SseStreamReader reader(client);
        auto head = start_stream(client, reader, chat_body("smart", true));
        ASSERT_TRUE(head) << "stream " << i << ": " << client.error();
        ASSERT_EQ(head->status, 200);
        auto events = reader.read_all(kWait);
        ASSERT_FALSE(events.empty());
        EXPECT_EQ(events.back(), "[DONE]");
        ASSERT_EQ(reader.state(), SseStreamReader::State::ended);
    }
    auto plain = client.send_request("POST", "/v1/chat/completions",
                                     {{"Content-Type", "application/json"}}, chat_body("smart"));
    ASSERT_TRUE(plain);
    auto response = client.read_response(kWait);
    ASSERT_TRUE(response) << client.error();
    EXPECT_EQ(response->status, 200);
}

TEST(StreamingTest, ConcurrentStreamsAllComplete) {
    GatewayStack stack({"--tps", "50", "--tokens", "20", "--ttft", "0ms"});
    ASSERT_TRUE(stack.start());
    constexpr int kStreams = 20;
    std::vector<std::unique_ptr<RawConnection>> clients;
    std::vector<std::unique_ptr<SseStreamReader>> readers;
    for (int i = 0; i < kStreams; ++i) {
        clients.push_back(std::make_unique<RawConnection>(stack.api_port()));
        ASSERT_TRUE(clients.back()->connected()) << clients.back()->error();
        readers.push_back(std::make_unique<SseStreamReader>(*clients.back()));
        ASSERT_TRUE(clients.back()->send_request(
            "POST", "/v1/chat/completions",
            {{"Content-Type", "application/json"}, {"x-request-id", "c-" + std::to_string(i)}},
            chat_body("smart", true)));
    }
    std::string expected;
    for (int i = 0; i < kStreams; ++i) {
        auto head = readers[i]->read_head(kWait);
        ASSERT_TRUE(head) << "stream " << i << ": " << clients[i]->error();
        ASSERT_EQ(head->status, 200);
        EXPECT_EQ(head->header("x-request-id"), "c-" + std::to_string(i));
        auto events = readers[i]->read_all(kWait);
        ASSERT_FALSE(events.empty());
        EXPECT_EQ(events.back(), "[DONE]") << "stream " << i;
        std::string content;
        for (const auto& e : events) content += delta_content(e);
        if (i == 0) expected = content;
        EXPECT_EQ(content, expected) << "stream " << i << " got another stream's frames?";
    }
    EXPECT_TRUE(stack.sim().wait_for_stat("streams_completed", kStreams));
}

TEST(ToolsTest, NonStreamingToolCallsArrive) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    auto response = stack.gateway().chat(tools_request(false));
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    auto doc = parse_json(response->body);
    ASSERT_FALSE(doc.HasParseError()) << response->body;
    EXPECT_EQ(json_string(doc, "choices/0/finish_reason"), "tool_calls") << response->body;
    EXPECT_EQ(json_string(doc, "choices/0/message/tool_calls/0/type"), "function");
    EXPECT_EQ(json_string(doc, "choices/0/message/tool_calls/0/function/name"), "get_weather")
        << response->body;
    auto arguments = json_string(doc, "choices/0/message/tool_calls/0/function/arguments");
    ASSERT_TRUE(arguments) << response->body;
    auto args = parse_json(*arguments);
    EXPECT_FALSE(args.HasParseError()) << "arguments are not JSON: " << *arguments;
    EXPECT_TRUE(args.IsObject());

    // The tools reached the upstream.
    auto recorded = stack.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(json_string(parse_json(recorded->body), "tools/0/function/name"), "get_weather");
}

TEST(ToolsTest, StreamedArgumentFragmentsConcatenateToTheFullArguments) {
    GatewayStack stack({"--ttft", "0ms"});
    ASSERT_TRUE(stack.start());

    auto plain = stack.gateway().chat(tools_request(false));
    ASSERT_TRUE(plain);
    ASSERT_EQ(plain->status, 200) << plain->body;
    auto expected =
        json_string(parse_json(plain->body), "choices/0/message/tool_calls/0/function/arguments");
    ASSERT_TRUE(expected) << plain->body;

    RawConnection client(stack.api_port());
    SseStreamReader reader(client);
    auto head = start_stream(client, reader, tools_request(true));
    ASSERT_TRUE(head);
    ASSERT_EQ(head->status, 200);
    auto events = reader.read_all(kWait);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "[DONE]");

    std::string name;
    std::string arguments;
    int fragments = 0;
    std::string finish_reason;
    for (const auto& e : events) {
        if (e == "[DONE]") continue;
        auto doc = parse_json(e);
        ASSERT_FALSE(doc.HasParseError()) << e;
        if (auto n = json_string(doc, "choices/0/delta/tool_calls/0/function/name")) name += *n;
        if (auto a = json_string(doc, "choices/0/delta/tool_calls/0/function/arguments")) {
            arguments += *a;
            ++fragments;
        }
        if (auto f = json_string(doc, "choices/0/finish_reason")) finish_reason = *f;
    }
    EXPECT_EQ(name, "get_weather");
    EXPECT_GE(fragments, 2) << "the simulator streams arguments in pieces";
    EXPECT_EQ(arguments, *expected);
    EXPECT_FALSE(parse_json(arguments).HasParseError()) << arguments;
    EXPECT_EQ(finish_reason, "tool_calls");
}

}  // namespace
}  // namespace turnout::test
