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

// A stream's first byte (its head) must come within first_byte_timeout. The upstream hangs for
// good and every other timeout is kNeverTimeout: only first_byte_timeout can answer the 504
// within the client's wait (see kTimeoutWait).
TEST(FaultsTest, StreamHangIs504WithinFirstByteTimeout) {
    GatewayStack stack({"--fault-hang"});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.provider_option("sim", "first_byte_timeout", "300ms");
        c.provider_option("sim", "timeout", kNeverTimeout);
        c.route_named("smart").timeout = kNeverTimeout;
    }));
    auto started = Clock::now();
    auto response = stack.gateway().chat(chat_body("smart", true), {}, kTimeoutWait);
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started);
    EXPECT_TRUE(is_openai_error(response, 504, "upstream_timeout", "upstream_error"))
        << "first_byte_timeout (300ms) not applied";
    EXPECT_GE(elapsed.count(), 250) << "answered before the timeout could expire";
}

// A non-streamed answer's head only comes after the whole generation, so first_byte_timeout
// does not apply; the provider's timeout (the deadline) does. The route timeout is
// kNeverTimeout: only the provider's can answer the 504 within the client's wait.
TEST(FaultsTest, NonStreamingHangIs504AtTheDeadlineNotTheFirstByteTimeout) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.provider_option("sim", "first_byte_timeout", "100ms");
        c.provider_option("sim", "timeout", "800ms");
        c.route_named("smart").timeout = kNeverTimeout;
    }));
    auto started = Clock::now();
    auto response = stack.gateway().chat(chat_body("smart"), {{"x-sim-hang", "1"}}, kTimeoutWait);
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started);
    EXPECT_TRUE(is_openai_error(response, 504, "upstream_timeout"))
        << "the provider timeout (800ms) not applied";
    EXPECT_GE(elapsed.count(), 700) << "first_byte_timeout cut a non-streamed request short";
}

TEST(FaultsTest, GarbageIs502) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    auto response = stack.gateway().chat(chat_body("smart"), {{"x-sim-garbage", "1"}});
    EXPECT_TRUE(is_openai_error(response, 502, "upstream_unavailable", "upstream_error"));
}

// A refused connection is a failure at once, not something to wait out: with every timeout
// at kNeverTimeout, an answer within the client's wait can only come from the refusal itself,
// and it is counted as a connect error, not a timeout.
TEST(FaultsTest, ConnectionRefusedIs502) {
    ClosedPort closed;
    GatewayOptions options;
    GatewayConfig config =
        GatewayConfig::for_simulator("http://127.0.0.1:" + std::to_string(closed.port()) + "/v1");
    for (const char* timeout : {"timeout", "connect_timeout", "first_byte_timeout"}) {
        config.provider_option("sim", timeout, kNeverTimeout);
    }
    config.route_named("smart").timeout = kNeverTimeout;
    options.yaml = config.yaml();
    GatewayProcess gateway(options);
    ASSERT_TRUE(gateway.start());
    auto response = gateway.chat(chat_body("smart"), {}, kTimeoutWait);
    EXPECT_TRUE(is_openai_error(response, 502, "upstream_unavailable", "upstream_error"));
    EXPECT_TRUE(gateway.wait_for_metric(
        "turnout_upstream_errors_total", {{"provider", "sim"}, {"kind", "connect"}},
        [](double v) { return v == 1; }, "== 1"));
    auto metrics = gateway.metrics();
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metric_value(*metrics, "turnout_upstream_errors_total",
                           {{"provider", "sim"}, {"kind", "timeout"}})
                  .value_or(0),
              0.0)
        << *metrics;
}

TEST(FaultsTest, ClientDisconnectMidStreamCancelsTheUpstream) {
    // One token per second: the upstream stream lasts 30 s, far longer than the checks below
    // take before the client hangs up; the simulator sees the hang-up at its next frame.
    GatewayStack stack({"--tps", "1", "--tokens", "30", "--ttft", "0ms"});
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
    // The gateway keeps serving (an answer at once, not paced).
    auto ok = stack.gateway().chat(chat_body("smart"), {{"x-sim-tps", "0"}});
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
}

TEST(FaultsTest, StreamIdleTimeoutEndsTheStreamWithAnErrorFrame) {
    // One token per 5 s: each gap is over 16 times the 300ms idle timeout, and the whole answer
    // (45 s) outlasts the client's wait (kTimeoutWait). The provider and route deadlines are
    // kNeverTimeout, so only the idle timeout can end the stream within that wait.
    GatewayStack stack({"--tps", "0.2", "--tokens", "10", "--ttft", "0ms"});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.provider_option("sim", "stream_idle_timeout", "300ms");
        c.provider_option("sim", "timeout", kNeverTimeout);
        c.route_named("smart").timeout = kNeverTimeout;
    }));
    RawConnection client(stack.api_port());
    ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                    {{"Content-Type", "application/json"}},
                                    chat_body("smart", true)));
    SseStreamReader reader(client);
    auto head = reader.read_head(kWait);
    ASSERT_TRUE(head);
    ASSERT_EQ(head->status, 200);
    auto events = reader.read_all(kTimeoutWait);
    EXPECT_EQ(reader.state(), SseStreamReader::State::ended)
        << "stream_idle_timeout (300ms) not applied; body: " << reader.body_so_far();
    ASSERT_FALSE(events.empty()) << reader.body_so_far();
    EXPECT_EQ(json_string(parse_json(events.back()), "error/code"), "upstream_stream_failed")
        << reader.body_so_far();
    for (const auto& e : events) EXPECT_NE(e, "[DONE]");
    // The gateway hung up on the upstream stream (the simulator sees it at its next frame).
    EXPECT_TRUE(stack.sim().wait_for_stat("streams_aborted", 1, kTimeoutWait));
}

// The upstream hangs for good and the provider's own timeouts are kNeverTimeout: only the
// route timeout can answer the 504 within the client's wait.
TEST(FaultsTest, RouteTimeoutBoundsTheWholeRequest) {
    GatewayStack stack({"--fault-hang"});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.provider_option("sim", "first_byte_timeout", kNeverTimeout);
        c.provider_option("sim", "timeout", kNeverTimeout);
        c.routes()[0].extra_lines.push_back("timeout: 500ms");
    }));
    auto started = Clock::now();
    auto response = stack.gateway().chat(chat_body("smart"), {}, kTimeoutWait);
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
    EXPECT_TRUE(is_openai_error(response, 504, "upstream_timeout"))
        << "the route timeout (500ms) did not bound the request";
    EXPECT_GE(elapsed, 400);
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
