// Upstream failures: errors passed through, resets, hangs, garbage, refused connections, a
// stream failing half-way, a client going away mid-stream, fallbacks.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

TEST(FaultsTest, Upstream500IsPassedThrough) {
    GatewayStack stack({"--fault-status", "500"});
    ASSERT_TRUE(stack.start());
    auto direct = stack.sim().request("POST", "/v1/chat/completions", {}, chat_body("sim-large"));
    ASSERT_TRUE(direct);
    ASSERT_EQ(direct->status, 500);

    auto response = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 500);
    EXPECT_EQ(response->body, direct->body);
    EXPECT_EQ(response->header("x-turnout-target"), "sim/sim-large");
    EXPECT_FALSE(response->header("x-request-id").empty());
}

TEST(FaultsTest, Upstream429IsPassedThroughWithRetryAfter) {
    GatewayStack stack({"--fault-status", "429"});
    ASSERT_TRUE(stack.start());
    auto direct = stack.sim().request("POST", "/v1/chat/completions", {}, chat_body("sim-large"));
    ASSERT_TRUE(direct);
    ASSERT_EQ(direct->status, 429);
    ASSERT_TRUE(direct->has_header("retry-after")) << "the simulator sends retry-after on 429";

    auto response = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 429);
    EXPECT_EQ(response->body, direct->body);
    EXPECT_EQ(response->header("retry-after"), direct->header("retry-after"));
}

TEST(FaultsTest, PerRequestStatusHeaderIsPassedThrough) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    auto response = stack.gateway().chat(chat_body("smart"), {{"x-sim-status", "503"}});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 503) << response->body;
    auto ok = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << "a failed request must not poison the next one";
}

TEST(FaultsTest, ResetBeforeTheAnswerIs502) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    auto response = stack.gateway().chat(chat_body("smart"), {{"x-sim-reset-after", "1"}});
    EXPECT_TRUE(is_openai_error(response, 502, "upstream_unavailable", "upstream_error"));
    // The gateway recovers: the next request gets a fresh upstream connection.
    auto ok = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST(FaultsTest, ResetFaultFlagNonStreamingIs502) {
    GatewayStack stack({"--fault-reset-after", "3"});
    ASSERT_TRUE(stack.start());
    auto response = stack.gateway().chat(chat_body("smart"));
    EXPECT_TRUE(is_openai_error(response, 502, "upstream_unavailable"));
}

TEST(FaultsTest, ResetMidStreamEndsWithAnErrorFrameAndNoDone) {
    GatewayStack stack({"--ttft", "0ms", "--tokens", "20"});
    ASSERT_TRUE(stack.start());
    RawConnection client(stack.api_port());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(
        client.send_request("POST", "/v1/chat/completions",
                            {{"Content-Type", "application/json"}, {"x-sim-reset-after", "3"}},
                            chat_body("smart", true)));
    SseStreamReader reader(client);
    auto head = reader.read_head(kWait);
    ASSERT_TRUE(head) << client.error();
    ASSERT_EQ(head->status, 200);

    auto events = reader.read_all(kWait);
    ASSERT_GE(events.size(), 4u) << "3 content frames and one error frame; body:\n"
                                 << reader.body_so_far();
    // Before the error: the simulator's frames as relayed (its role frame, then exactly 3
    // content frames: x-sim-reset-after counts content frames).
    int content_frames = 0;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        auto doc = parse_json(events[i]);
        EXPECT_FALSE(doc.HasParseError()) << events[i];
        EXPECT_FALSE(json_at(doc, "error")) << "frame " << i << " is an error: " << events[i];
        if (!delta_content(events[i]).empty()) ++content_frames;
    }
    EXPECT_EQ(content_frames, 3) << reader.body_so_far();
    EXPECT_LE(events.size(), 5u) << reader.body_so_far();
    auto error = parse_json(events.back());
    ASSERT_FALSE(error.HasParseError()) << events.back();
    EXPECT_EQ(json_string(error, "error/code"), "upstream_stream_failed") << events.back();
    EXPECT_EQ(json_string(error, "error/type"), "upstream_error") << events.back();
    EXPECT_TRUE(json_string(error, "error/message")) << events.back();
    for (const auto& e : events) EXPECT_NE(e, "[DONE]");
    // The chunked body is terminated, then the gateway closes the connection.
    EXPECT_EQ(reader.state(), SseStreamReader::State::ended) << reader.body_so_far();
    EXPECT_TRUE(client.wait_closed_by_peer(kWait));
}

// A stream's first byte (its head) must come within first_byte_timeout.
TEST(FaultsTest, StreamHangIs504WithinFirstByteTimeout) {
    GatewayStack stack({"--fault-hang"});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.provider_option("sim", "first_byte_timeout", "300ms");
        c.provider_option("sim", "timeout", "30s");
    }));
    auto started = Clock::now();
    auto response = stack.gateway().chat(chat_body("smart", true), {}, Millis(20000));
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started);
    EXPECT_TRUE(is_openai_error(response, 504, "upstream_timeout", "upstream_error"));
    EXPECT_GE(elapsed.count(), 250) << "answered before the timeout could expire";
    EXPECT_LT(elapsed.count(), 5000) << "first_byte_timeout (300ms) not applied";
}

// A non-streamed answer's head only comes after the whole generation, so first_byte_timeout
// does not apply; the provider's timeout (the deadline) does.
TEST(FaultsTest, NonStreamingHangIs504AtTheDeadlineNotTheFirstByteTimeout) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.provider_option("sim", "first_byte_timeout", "100ms");
        c.provider_option("sim", "timeout", "800ms");
    }));
    auto started = Clock::now();
    auto response = stack.gateway().chat(chat_body("smart"), {{"x-sim-hang", "1"}});
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started);
    EXPECT_TRUE(is_openai_error(response, 504, "upstream_timeout"));
    EXPECT_GE(elapsed.count(), 700) << "first_byte_timeout cut a non-streamed request short";
    EXPECT_LT(elapsed.count(), 5000) << "the provider timeout (800ms) not applied";
}

TEST(FaultsTest, GarbageIs502) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    auto response = stack.gateway().chat(chat_body("smart"), {{"x-sim-garbage", "1"}});
    EXPECT_TRUE(is_openai_error(response, 502, "upstream_unavailable", "upstream_error"));
}

TEST(FaultsTest, ConnectionRefusedIs502) {
    ClosedPort closed;
    GatewayOptions options;
    GatewayConfig config =
        GatewayConfig::for_simulator("http://127.0.0.1:" + std::to_string(closed.port()) + "/v1");
    options.yaml = config.yaml();
    GatewayProcess gateway(options);
    ASSERT_TRUE(gateway.start());
    auto started = Clock::now();
    auto response = gateway.chat(chat_body("smart"));
    EXPECT_TRUE(is_openai_error(response, 502, "upstream_unavailable", "upstream_error"));
    EXPECT_LT(std::chrono::duration_cast<Millis>(Clock::now() - started).count(), 5000);
}

TEST(FaultsTest, ClientDisconnectMidStreamCancelsTheUpstream) {
    GatewayStack stack({"--tps", "10", "--tokens", "30", "--ttft", "0ms"});
    ASSERT_TRUE(stack.start());
    {
        RawConnection client(stack.api_port());
        ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                        {{"Content-Type", "application/json"}},
                                        chat_body("smart", true)));
        SseStreamReader reader(client);
        auto head = reader.read_head(kWait);
        ASSERT_TRUE(head);
        ASSERT_EQ(head->status, 200);
        ASSERT_TRUE(reader.next_event(kWait)) << reader.body_so_far();
        ASSERT_EQ(stack.sim().stat("active_streams"), 1);
        client.close();
    }
    EXPECT_TRUE(stack.sim().wait_for_stat("streams_aborted", 1));
    EXPECT_TRUE(stack.sim().wait_for_stat("active_streams", 0));
    EXPECT_EQ(stack.sim().stat("streams_completed"), 0);
    // The gateway keeps serving.
    auto ok = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
}

TEST(FaultsTest, StreamIdleTimeoutEndsTheStreamWithAnErrorFrame) {
    // One token per second: the gap after the first content frame exceeds the 300ms idle
    // timeout long before the stream would end.
    GatewayStack stack({"--tps", "1", "--tokens", "10", "--ttft", "0ms"});
    ASSERT_TRUE(stack.start(
        [](GatewayConfig& c) { c.provider_option("sim", "stream_idle_timeout", "300ms"); }));
    RawConnection client(stack.api_port());
    ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                    {{"Content-Type", "application/json"}},
                                    chat_body("smart", true)));
    SseStreamReader reader(client);
    auto head = reader.read_head(kWait);
    ASSERT_TRUE(head);
    ASSERT_EQ(head->status, 200);
    auto started = Clock::now();
    auto events = reader.read_all(kWait);
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
    ASSERT_FALSE(events.empty()) << reader.body_so_far();
    EXPECT_EQ(json_string(parse_json(events.back()), "error/code"), "upstream_stream_failed")
        << reader.body_so_far();
    EXPECT_LT(elapsed, 5000) << "stream_idle_timeout (300ms) not applied";
    for (const auto& e : events) EXPECT_NE(e, "[DONE]");
    // The gateway hung up on the upstream stream.
    EXPECT_TRUE(stack.sim().wait_for_stat("streams_aborted", 1));
}

TEST(FaultsTest, RouteTimeoutBoundsTheWholeRequest) {
    GatewayStack stack({"--ttft", "3000ms"});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.provider_option("sim", "first_byte_timeout", "10s");
        c.routes()[0].extra_lines.push_back("timeout: 500ms");
    }));
    auto started = Clock::now();
    auto response = stack.gateway().chat(chat_body("smart"));
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
    EXPECT_TRUE(is_openai_error(response, 504, "upstream_timeout"));
    EXPECT_GE(elapsed, 400);
    EXPECT_LT(elapsed, 2500) << "the route timeout (500ms) did not bound the request";
}

TEST(FaultsTest, FallbackAnswersWhenThePrimaryFails) {
    SimulatorProcess backup;
    ASSERT_TRUE(backup.start());
    GatewayStack stack({"--fault-status", "503"});
    ASSERT_TRUE(stack.start([&](GatewayConfig& c) {
        ProviderYaml p;
        p.name = "backup";
        p.base_url = backup.base_url();
        c.provider(p);
        c.routes()[0].fallbacks.push_back({"backup", "backup-model"});
    }));
    auto response = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->header("x-turnout-target"), "backup/backup-model");
    auto recorded = backup.last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(json_string(parse_json(recorded->body), "model"), "backup-model");
    EXPECT_TRUE(stack.sim().wait_for_stat(
        "requests", [](std::int64_t n) { return n >= 1; }, kWait, ">= 1 (primary tried first)"));
}

}  // namespace
}  // namespace turnout::test
