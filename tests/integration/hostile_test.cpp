// Hostile clients and upstreams (issue 9), over real sockets: each case gets the answer
// docs/hostile-inputs.md promises, and the gateway serves the next request as before.

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

std::string raw_post(const std::string& headers, const std::string& body,
                     const std::string& version = "HTTP/1.1") {
    return "POST /v1/chat/completions " + version +
           "\r\nHost: gw\r\nContent-Type: application/json\r\n" + headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string hex_chunk(const std::string& data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
}

class HostileTest : public ::testing::Test {
  protected:
    ::testing::AssertionResult start(const std::function<void(GatewayConfig&)>& tweak = {}) {
        return stack_.start([&](GatewayConfig& c) {
            c.limit("max_header_bytes", "8KiB");
            c.limit("client_timeout", "2s");
            if (tweak) tweak(c);
        });
    }

    std::optional<HttpResponse> send_raw(const std::string& bytes, bool expect_close = true) {
        RawConnection client(stack_.api_port());
        EXPECT_TRUE(client.connected()) << client.error();
        client.send(bytes);
        auto response = client.read_response(kWait);
        if (expect_close) {
            EXPECT_TRUE(client.wait_closed_by_peer(kWait)) << "the connection stayed open";
        }
        return response;
    }

    /// The gateway still serves an ordinary request.
    ::testing::AssertionResult still_serving() {
        auto response = stack_.gateway().chat(chat_body("smart"));
        if (!response) return ::testing::AssertionFailure() << "no answer after the hostile case";
        if (response->status != 200) {
            return ::testing::AssertionFailure()
                   << "status " << response->status << ": " << response->body;
        }
        return ::testing::AssertionSuccess();
    }

    GatewayStack stack_{{"--ttft", "0ms", "--tokens", "3"}};
};

// Item 1: the Release build crashed re-serialising this body (the route rewrites the model).
// The -O0 build survives the recursion, so the test asserts the 400, not mere survival.
TEST_F(HostileTest, DeeplyNestedBodyIs400BeforeAnyRecursion) {
    ASSERT_TRUE(start());
    const std::string body =
        R"({"model":"smart","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
    auto response = stack_.gateway().chat(body);
    EXPECT_TRUE(is_openai_error(response, 400, "invalid_json")) << (response ? response->body : "");
    EXPECT_NE(response->body.find("nested too deeply"), std::string::npos) << response->body;
    // Nesting within the bound is routed as usual.
    const std::string ok = R"({"model":"smart","messages":[{"role":"user","content":"hi"}],"x":)" +
                           std::string(100, '[') + std::string(100, ']') + "}";
    auto served = stack_.gateway().chat(ok);
    ASSERT_TRUE(served);
    EXPECT_EQ(served->status, 200) << served->body;
    EXPECT_EQ(stack_.sim().stat("requests"), 1) << "the deep body reached the upstream";
    EXPECT_TRUE(stack_.gateway().wait_for_log(std::regex("rejected request body")));
}

TEST_F(HostileTest, TheSimulatorAnswersADeepBodyWith400) {
    ASSERT_TRUE(start());
    const std::string body =
        R"({"model":"m","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
    auto response = stack_.sim().request("POST", "/v1/chat/completions",
                                         {{"Content-Type", "application/json"}}, body);
    ASSERT_TRUE(response) << "the simulator died";
    EXPECT_EQ(response->status, 400) << response->body;
    EXPECT_TRUE(still_serving());
}

// Item 3: turnout routes on the first `model`, a last-wins upstream would serve the second.
TEST_F(HostileTest, DuplicateKeysAre400AtAnyDepth) {
    ASSERT_TRUE(start());
    for (const std::string body :
         {R"({"model":"smart","model":"fo","messages":[]})",
          R"({"model":"smart","messages":[{"role":"user","content":"a","content":"b"}]})"}) {
        auto response = stack_.gateway().chat(body);
        EXPECT_TRUE(is_openai_error(response, 400, "invalid_json")) << body;
        EXPECT_NE(response->body.find("duplicate key"), std::string::npos) << response->body;
    }
    EXPECT_EQ(stack_.sim().stat("requests"), 0);
}

// Item 2: Anthropic's 529 (and 520, unknown to Beast) pass through as their numbers, count
// under their codes, and trigger the fallback like any 5xx.
TEST_F(HostileTest, UnknownUpstreamStatusesPassThroughAsTheirNumbers) {
    ASSERT_TRUE(start(
        [](GatewayConfig& c) { c.provider_option("sim", "circuit_breaker", "{failures: 0}"); }));
    for (const char* code : {"529", "520"}) {
        auto response = stack_.gateway().chat(chat_body("smart"), {{"x-sim-status", code}});
        ASSERT_TRUE(response);
        EXPECT_EQ(std::to_string(response->status), code) << response->body;
        EXPECT_NE(response->reason, "<unknown-status>");
        EXPECT_NE(response->body.find("error"), std::string::npos) << "the error body is kept";
        EXPECT_TRUE(stack_.gateway().wait_for_metric(
            "turnout_requests_total", {{"route", "smart"}, {"code", code}},
            [](double v) { return v == 1; }, "== 1"));
    }
    // Streamed requests too: the status comes from the head.
    auto stream = stack_.gateway().chat(chat_body("smart", true), {{"x-sim-status", "529"}});
    ASSERT_TRUE(stream);
    EXPECT_EQ(stream->status, 529);
}

/// Route `smart` served by provider `bad` (a simulator failing with `status`), falling back to
/// the stack's healthy simulator as provider `sim`.
void route_to_failing_primary(GatewayConfig& c, const SimulatorProcess& bad) {
    ProviderYaml p;
    p.name = "bad";
    p.base_url = bad.base_url();
    c.provider(p);
    c.route_named("smart").primary = {"bad", "bad-model"};
    c.route_named("smart").fallbacks = {{"sim", "backup-model"}};
}

TEST_F(HostileTest, A529TriggersTheFallback) {
    SimulatorProcess bad({"--fault-status", "529"});
    ASSERT_TRUE(bad.start());
    ASSERT_TRUE(start([&](GatewayConfig& c) { route_to_failing_primary(c, bad); }));
    auto response = stack_.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->header("x-turnout-target"), "sim/backup-model");
    EXPECT_EQ(bad.stat("requests"), 1);
    EXPECT_TRUE(stack_.gateway().wait_for_metric(
        "turnout_upstream_errors_total", {{"provider", "bad"}, {"kind", "status_5xx"}},
        [](double v) { return v == 1; }, "== 1"));
}

// Item 6: the head.
TEST_F(HostileTest, HeadLimitsVersionAndHost) {
    ASSERT_TRUE(start());
    const std::string body = chat_body("smart");
    // Header block a little over 8 KiB in total: request line and fields are bounded together.
    const std::string target = "/v1/chat/completions?pad=" + std::string(4500, 'a');
    auto big =
        send_raw("POST " + target + " HTTP/1.1\r\nHost: gw\r\nX-Pad: " + std::string(4000, 'b') +
                 "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_TRUE(is_openai_error(big, 431, "headers_too_large"));
    auto http12 = send_raw(raw_post("", body, "HTTP/1.2"));
    EXPECT_TRUE(is_openai_error(http12, 505, "http_version_not_supported"));
    auto no_host = send_raw("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_TRUE(is_openai_error(no_host, 400, "bad_request"));
    auto two_hosts = send_raw(raw_post("Host: other\r\n", body));
    EXPECT_TRUE(is_openai_error(two_hosts, 400, "bad_request"));
    EXPECT_EQ(stack_.sim().stat("requests"), 0);
    EXPECT_TRUE(still_serving());
}

TEST_F(HostileTest, LongTargetIs414EvenUnderALargeHeaderLimit) {
    ASSERT_TRUE(start([](GatewayConfig& c) { c.limit("max_header_bytes", "64KiB"); }));
    auto response = send_raw("GET /v1/models?x=" + std::string(9 * 1024, 'a') +
                             " HTTP/1.1\r\nHost: gw\r\n\r\n");
    EXPECT_TRUE(is_openai_error(response, 414, "uri_too_long"));
}

// Item 6: trailers are not forwarded, and chunk lines and trailers are bounded.
TEST_F(HostileTest, RequestTrailersAreDroppedAndBounded) {
    ASSERT_TRUE(start());
    const std::string body = chat_body("smart");
    const std::string head =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    auto with_trailer = send_raw(head + hex_chunk(body) +
                                     "0\r\nX-Trailer-Evil: 1\r\n"
                                     "Authorization: Bearer trailer\r\n\r\n",
                                 false);
    ASSERT_TRUE(with_trailer);
    EXPECT_EQ(with_trailer->status, 200) << with_trailer->body;
    auto recorded = stack_.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_FALSE(recorded->has_header("x-trailer-evil")) << "a trailer crossed as a header";
    EXPECT_NE(recorded->header("authorization"), "Bearer trailer");

    // 1 MiB of trailers: refused once they exceed the header budget, never forwarded.
    RawConnection client(stack_.api_port());
    ASSERT_TRUE(client.connected());
    client.send(head + hex_chunk(body) + "0\r\n");
    const std::string trailer = "X-T: " + std::string(1000, 't') + "\r\n";
    for (int i = 0; i < 1024 && client.send(trailer, Millis(2000)); ++i) {
    }
    auto big = client.read_response(kWait);
    EXPECT_TRUE(is_openai_error(big, 400, "bad_request")) << (big ? big->body : "");
    // A chunk line with 1 MiB of extensions: the same.
    RawConnection ext(stack_.api_port());
    ASSERT_TRUE(ext.connected());
    ext.send(head + std::to_string(body.size()) + ";");
    const std::string extension = "e=" + std::string(1000, 'x') + ";";
    for (int i = 0; i < 1024 && ext.send(extension, Millis(2000)); ++i) {
    }
    auto ext_answer = ext.read_response(kWait);
    EXPECT_TRUE(is_openai_error(ext_answer, 400, "bad_request"))
        << (ext_answer ? ext_answer->body : "");
    EXPECT_EQ(stack_.sim().stat("requests"), 1);
    EXPECT_TRUE(still_serving());
}

// Item 11: an HTTP/1.0 client asking for a stream gets the events delimited by the close,
// never chunked framing it cannot decode.
TEST_F(HostileTest, Http10StreamIsDelimitedByTheClose) {
    ASSERT_TRUE(start());
    const std::string body = chat_body("smart", true);
    RawConnection client(stack_.api_port());
    ASSERT_TRUE(client.connected());
    client.send(raw_post("", body, "HTTP/1.0"));
    auto head = client.read_head(kWait);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_FALSE(head->has_header("transfer-encoding")) << head->header("transfer-encoding");
    EXPECT_FALSE(head->has_header("content-length"));
    std::string rest = client.take_buffered();
    std::string more;
    while (client.read_some(more, kWait) == ReadStatus::data) {
        rest += more;
        more.clear();
    }
    EXPECT_EQ(rest.find("\r\n0\r\n"), std::string::npos) << "chunk framing in an HTTP/1.0 body";
    EXPECT_NE(rest.find("data: [DONE]"), std::string::npos) << rest;
    EXPECT_EQ(rest.rfind("data: ", 0), 0u) << "the body starts with an event, not a chunk size";
}

// Item 11: a circuit breaker per provider. Six 500s in a row no longer all reach it.
TEST_F(HostileTest, CircuitOpensAfterConsecutiveFailuresAndAnswers503WithRetryAfter) {
    // A cooldown far longer than the three refused requests below take, even on a slow machine:
    // they must all meet the open circuit.
    constexpr Millis kCooldown{5000};
    ASSERT_TRUE(start([](GatewayConfig& c) {
        c.provider_option("sim", "circuit_breaker", "{failures: 3, cooldown: 5s}");
    }));
    Clock::time_point last_failure_sent;
    for (int i = 0; i < 3; ++i) {
        last_failure_sent = Clock::now();
        auto response = stack_.gateway().chat(chat_body("smart"), {{"x-sim-status", "500"}});
        ASSERT_TRUE(response);
        EXPECT_EQ(response->status, 500);
    }
    for (int i = 0; i < 3; ++i) {
        auto refused = stack_.gateway().chat(chat_body("smart"), {{"x-sim-status", "500"}});
        EXPECT_TRUE(is_openai_error(refused, 503, "circuit_open"));
        // What is left of the cooldown, in whole seconds rounded up.
        const std::string retry_after = refused->header("retry-after");
        EXPECT_TRUE(retry_after.size() == 1 && retry_after >= "1" && retry_after <= "5")
            << retry_after;
    }
    EXPECT_EQ(stack_.sim().stat("requests"), 3) << "requests reached an open circuit";
    EXPECT_TRUE(stack_.gateway().wait_for_metric(
        "turnout_upstream_errors_total", {{"provider", "sim"}, {"kind", "circuit_open"}},
        [](double v) { return v == 3; }, "== 3"));
    EXPECT_TRUE(stack_.gateway().wait_for_log(std::regex("circuit opened")));
    // After the cooldown one probe goes through; its success closes the circuit. Until then
    // every request is refused without reaching the upstream (polled, not slept through).
    std::optional<HttpResponse> probe;
    ASSERT_TRUE(wait_for(
        [&] {
            probe = stack_.gateway().chat(chat_body("smart"));
            return !probe || probe->status != 503;
        },
        kCooldown + kWait, "the circuit to let a probe through", Millis(100)));
    const auto open_for = std::chrono::duration_cast<Millis>(Clock::now() - last_failure_sent);
    ASSERT_TRUE(probe);
    EXPECT_EQ(probe->status, 200) << probe->body;
    EXPECT_GE(open_for.count(), kCooldown.count()) << "a probe went through before the cooldown";
    EXPECT_EQ(stack_.sim().stat("requests"), 4) << "the refused polls reached the upstream";
    EXPECT_TRUE(still_serving());
    EXPECT_EQ(stack_.sim().stat("requests"), 5);
}

TEST_F(HostileTest, AnOpenCircuitSendsRequestsToTheFallback) {
    SimulatorProcess bad({"--fault-status", "503"});
    ASSERT_TRUE(bad.start());
    ASSERT_TRUE(start([&](GatewayConfig& c) {
        route_to_failing_primary(c, bad);
        c.provider_option("bad", "circuit_breaker", "{failures: 2, cooldown: 60s}");
        c.route_named("smart").retry_attempts = 3;
        c.route_named("smart").retry_backoff = "1ms";
    }));
    auto response = stack_.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->header("x-turnout-target"), "sim/backup-model");
    EXPECT_EQ(bad.stat("requests"), 2) << "retries went on into an open circuit";
    auto next = stack_.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(next);
    EXPECT_EQ(next->header("x-turnout-target"), "sim/backup-model");
    EXPECT_EQ(bad.stat("requests"), 2);
}

// Item 11: the high-water mark of requests in flight.
TEST_F(HostileTest, RequestsBeyondTheHighWaterMarkGet503WithRetryAfter) {
    // The only slot is held by a request to an upstream that answers when the test opens its
    // gate: it is provably in flight during the checks, however slow the machine.
    GatedUpstream gated(3, 0);
    ASSERT_TRUE(start([&](GatewayConfig& c) {
        c.limit("max_inflight", "1");
        ProviderYaml p;
        p.name = "gated";
        p.base_url = gated.base_url();
        c.provider(p);
        RouteYaml held;
        held.name = "held";
        held.match_model = "held";
        held.primary = {"gated", "gated-model"};
        c.route(held);
    }));
    RawConnection slow(stack_.api_port());
    ASSERT_TRUE(slow.connected());
    slow.send(raw_post("", chat_body("held", true)));
    ASSERT_TRUE(gated.wait_for_requests(1));
    auto refused = stack_.gateway().chat(chat_body("smart"));
    EXPECT_TRUE(is_openai_error(refused, 503, "overloaded"));
    EXPECT_EQ(refused->header("retry-after"), "1");
    EXPECT_EQ(stack_.sim().stat("requests"), 0);
    EXPECT_TRUE(stack_.gateway().wait_for_log(std::regex("high-water mark")));
    gated.open_gate();
    SseStreamReader reader(slow);
    ASSERT_TRUE(reader.read_head(kWait));
    auto events = reader.read_all(kWait);
    ASSERT_FALSE(events.empty()) << reader.body_so_far();
    EXPECT_EQ(events.back(), "[DONE]") << reader.body_so_far();
    // The slot is given back just after the stream's last byte: poll for it, bounded.
    const auto deadline = Clock::now() + kWait;
    std::optional<HttpResponse> after;
    do {
        after = stack_.gateway().chat(chat_body("smart"));
    } while (after && after->status == 503 && Clock::now() < deadline);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, 200) << "the slot was not given back: " << after->body;
    // The admin listener is not live traffic: never refused.
    auto health = stack_.gateway().admin_get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace turnout::test
