// Failover: the failure matrix (each failure kind x a fallback or none x streamed or not, with
// what the client sees and how many attempts reached each upstream), retries with backoff, what
// is never retried (a 4xx other than 429, a stream that has started), and the route timeout
// bounding the whole request.
//
// Faults come from the simulators' command line (so the fallback stays healthy), not from
// x-sim-* request headers, which the gateway forwards to every attempt; headers are used only
// where every upstream may see them.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

constexpr const char* kPrimaryTarget = "primary/primary-model";
constexpr const char* kBackupTarget = "backup/backup-model";

ProviderYaml provider(const std::string& name, const std::string& base_url) {
    ProviderYaml p;
    p.name = name;
    p.base_url = base_url;
    p.api_key_env = GatewayConfig::kSimKeyEnv;
    p.options = {{"timeout", "20s"}, {"connect_timeout", "2s"}, {"first_byte_timeout", "10s"}};
    return p;
}

/// A route `chat` -> primary/primary-model, with backup/backup-model as its fallback.
RouteYaml chat_route(bool with_fallback) {
    RouteYaml r;
    r.name = "chat";
    r.primary = {"primary", "primary-model"};
    if (with_fallback) r.fallbacks = {{"backup", "backup-model"}};
    return r;
}

::testing::AssertionResult start_gateway(std::unique_ptr<GatewayProcess>& gateway,
                                         const GatewayConfig& config) {
    GatewayOptions options;
    options.yaml = config.yaml();
    gateway = std::make_unique<GatewayProcess>(options);
    return gateway->start();
}

/// The data payloads of a complete (de-chunked) SSE body.
std::vector<std::string> sse_events(const std::string& body) {
    std::vector<std::string> events;
    std::size_t start = 0;
    while (start < body.size()) {
        auto end = body.find("\n\n", start);
        std::string raw = body.substr(start, end == std::string::npos ? end : end - start);
        bool has_data = false;
        std::string data = sse_data(raw, &has_data);
        if (has_data) events.push_back(data);
        if (end == std::string::npos) break;
        start = end + 2;
    }
    return events;
}

/// A complete, successful answer: a chat.completion, or an SSE stream of chunks with content
/// that ends with [DONE] and has no error frame.
::testing::AssertionResult is_complete_answer(const HttpResponse& response, bool stream) {
    if (response.status != 200) {
        return ::testing::AssertionFailure()
               << "status " << response.status << ": " << response.body;
    }
    if (!stream) {
        auto doc = parse_json(response.body);
        if (doc.HasParseError() || !json_string(doc, "choices/0/message/content")) {
            return ::testing::AssertionFailure() << "not a chat completion: " << response.body;
        }
        return ::testing::AssertionSuccess();
    }
    if (response.header("content-type").find("text/event-stream") == std::string::npos) {
        return ::testing::AssertionFailure()
               << "content-type " << response.header("content-type") << ": " << response.body;
    }
    auto events = sse_events(response.body);
    if (events.empty() || events.back() != "[DONE]") {
        return ::testing::AssertionFailure() << "no [DONE] at the end: " << response.body;
    }
    std::string content;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        auto doc = parse_json(events[i]);
        if (doc.HasParseError() || json_at(doc, "error")) {
            return ::testing::AssertionFailure() << "bad frame " << i << ": " << events[i];
        }
        content += delta_content(events[i]);
    }
    if (content.empty()) return ::testing::AssertionFailure() << "no content: " << response.body;
    return ::testing::AssertionSuccess();
}

/// The simulator's own error body (kSimulatedFailure), passed through unchanged.
::testing::AssertionResult is_simulated_failure(const HttpResponse& response, int status) {
    if (response.status != status) {
        return ::testing::AssertionFailure()
               << "status " << response.status << ", expected " << status << ": " << response.body;
    }
    if (response.body !=
        R"({"error":{"message":"simulated failure","type":"server_error","code":"simulated"}})") {
        return ::testing::AssertionFailure()
               << "not the upstream's body unchanged: " << response.body;
    }
    return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// The matrix

enum class Failure { connect_refused, status_500, status_503, status_429, hang, reset };

std::string failure_name(Failure f) {
    switch (f) {
        case Failure::connect_refused:
            return "ConnectRefused";
        case Failure::status_500:
            return "Status500";
        case Failure::status_503:
            return "Status503";
        case Failure::status_429:
            return "Status429";
        case Failure::hang:
            return "HangBeforeFirstByte";
        case Failure::reset:
            return "ResetBeforeAnswer";
    }
    return "Unknown";
}

/// turnout_upstream_errors_total's `kind` for the failure.
std::string error_kind(Failure f) {
    switch (f) {
        case Failure::connect_refused:
            return "connect";
        case Failure::status_500:
        case Failure::status_503:
            return "status_5xx";
        case Failure::status_429:
            return "status_429";
        case Failure::hang:
            return "timeout";
        case Failure::reset:
            return "reset";
    }
    return "";
}

/// The failing primary of one case: a simulator with a command-line fault, a closed port, or
/// (a streamed reset before the answer, which the simulator cannot do: it resets a stream only
/// after its head) a ResettingUpstream.
class FailingPrimary {
  public:
    FailingPrimary(Failure failure, bool stream) : failure_(failure) {
        switch (failure) {
            case Failure::connect_refused:
                closed_ = std::make_unique<ClosedPort>();
                break;
            case Failure::status_500:
                sim_args_ = {"--fault-status", "500"};
                break;
            case Failure::status_503:
                sim_args_ = {"--fault-status", "503"};
                break;
            case Failure::status_429:
                sim_args_ = {"--fault-status", "429"};
                break;
            case Failure::hang:
                sim_args_ = {"--fault-hang"};
                break;
            case Failure::reset:
                if (stream) {
                    resetting_ = std::make_unique<ResettingUpstream>();
                } else {
                    sim_args_ = {"--fault-reset-after", "0"};
                }
                break;
        }
    }

    ::testing::AssertionResult start() {
        if (sim_args_.empty()) return ::testing::AssertionSuccess();
        sim_ = std::make_unique<SimulatorProcess>(sim_args_);
        return sim_->start();
    }

    std::string base_url() const {
        if (closed_) return "http://127.0.0.1:" + std::to_string(closed_->port()) + "/v1";
        if (resetting_) return resetting_->base_url();
        return sim_->base_url();
    }

    /// Requests the primary received; nullopt for a closed port (nothing to count).
    std::optional<std::int64_t> requests() {
        if (closed_) return std::nullopt;
        if (resetting_) return resetting_->requests();
        return sim_->stat("requests");
    }

    Failure failure() const { return failure_; }

  private:
    Failure failure_;
    std::vector<std::string> sim_args_;
    std::unique_ptr<SimulatorProcess> sim_;
    std::unique_ptr<ClosedPort> closed_;
    std::unique_ptr<ResettingUpstream> resetting_;
};

using MatrixParam = std::tuple<Failure, bool, bool>;  // failure, with fallback, streamed

class FailoverMatrixTest : public ::testing::TestWithParam<MatrixParam> {};

TEST_P(FailoverMatrixTest, ClientSeesTheRightAnswerAndAttemptsAreCounted) {
    const auto [failure, with_fallback, stream] = GetParam();
    FailingPrimary primary(failure, stream);
    ASSERT_TRUE(primary.start());
    SimulatorProcess backup({"--ttft", "0ms", "--tokens", "5"});
    if (with_fallback) {
        ASSERT_TRUE(backup.start());
    }

    GatewayConfig config;
    ProviderYaml p = provider("primary", primary.base_url());
    // Every timeout of the primary that is not under test is kNeverTimeout, and so is the
    // route's: a failure waited out instead of recognised gets no answer within the client's
    // wait (kTimeoutWait), and for a hang only the timeout under test can end the attempt.
    if (failure != Failure::hang) {
        p.options = {{"timeout", kNeverTimeout},
                     {"connect_timeout", kNeverTimeout},
                     {"first_byte_timeout", kNeverTimeout}};
    } else if (stream) {
        // A stream's head must come within first_byte_timeout.
        p.options = {{"timeout", kNeverTimeout},
                     {"connect_timeout", kNeverTimeout},
                     {"first_byte_timeout", "300ms"}};
    } else {
        // A non-streamed answer's head comes after the whole generation: first_byte_timeout
        // (shorter) must not end the attempt, the provider timeout does.
        p.options = {{"timeout", "800ms"},
                     {"connect_timeout", kNeverTimeout},
                     {"first_byte_timeout", "300ms"}};
    }
    config.provider(p);
    if (with_fallback) config.provider(provider("backup", backup.base_url()));
    RouteYaml route = chat_route(with_fallback);
    route.timeout = kNeverTimeout;
    config.route(route);
    std::unique_ptr<GatewayProcess> gateway;
    ASSERT_TRUE(start_gateway(gateway, config));

    auto started = Clock::now();
    auto response =
        gateway->chat(chat_body("chat", stream), {{"x-request-id", "matrix-1"}}, kTimeoutWait);
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
    ASSERT_TRUE(response) << "no answer within " << kTimeoutWait.count() << " ms";
    EXPECT_EQ(response->header("x-request-id"), "matrix-1");
    EXPECT_EQ(response->header("x-turnout-route"), "chat");

    int expected_status = 200;
    if (with_fallback) {
        EXPECT_TRUE(is_complete_answer(*response, stream));
        EXPECT_EQ(response->header("x-turnout-target"), kBackupTarget);
        EXPECT_TRUE(backup.wait_for_stat("requests", 1));
        auto recorded = backup.last_request();
        ASSERT_TRUE(recorded);
        EXPECT_EQ(json_string(parse_json(recorded->body), "model"), "backup-model")
            << "the fallback receives its own model name";
    } else {
        switch (failure) {
            case Failure::status_500:
            case Failure::status_503:
            case Failure::status_429:
                // The last upstream answer passes through unchanged.
                expected_status = failure == Failure::status_500   ? 500
                                  : failure == Failure::status_503 ? 503
                                                                   : 429;
                EXPECT_TRUE(is_simulated_failure(*response, expected_status));
                EXPECT_EQ(response->header("x-turnout-target"), kPrimaryTarget);
                if (failure == Failure::status_429) {
                    EXPECT_EQ(response->header("retry-after"), "1")
                        << "the upstream's Retry-After must reach the client";
                }
                break;
            case Failure::connect_refused:
            case Failure::reset:
                expected_status = 502;
                EXPECT_TRUE(
                    is_openai_error(response, 502, "upstream_unavailable", "upstream_error"));
                break;
            case Failure::hang:
                expected_status = 504;
                EXPECT_TRUE(is_openai_error(response, 504, "upstream_timeout", "upstream_error"));
                break;
        }
    }
    if (failure == Failure::hang) {
        // The attempt ends at the timeout that applies (the only one that could end it within
        // the client's wait), not earlier.
        EXPECT_GE(elapsed, stream ? 250 : 700) << "gave up before the timeout";
    }

    // One attempt on the primary (no retries configured), one on the fallback.
    if (failure != Failure::connect_refused) {
        EXPECT_EQ(primary.requests(), 1) << "requests that reached the failing primary";
    }
    if (with_fallback) {
        EXPECT_EQ(backup.stat("requests"), 1);
    }

    EXPECT_TRUE(gateway->wait_for_metric(
        "turnout_upstream_errors_total", {{"provider", "primary"}, {"kind", error_kind(failure)}},
        [](double v) { return v >= 1; }, ">= 1"));
    EXPECT_TRUE(gateway->wait_for_metric(
        "turnout_requests_total", {{"route", "chat"}, {"code", std::to_string(expected_status)}},
        [](double v) { return v == 1; }, "== 1"));
    if (failure != Failure::hang) {
        // Recognised as what it is, not waited out.
        auto metrics = gateway->metrics();
        ASSERT_TRUE(metrics);
        EXPECT_EQ(metric_value(*metrics, "turnout_upstream_errors_total",
                               {{"provider", "primary"}, {"kind", "timeout"}})
                      .value_or(0),
                  0.0)
            << *metrics;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, FailoverMatrixTest,
    ::testing::Combine(::testing::Values(Failure::connect_refused, Failure::status_500,
                                         Failure::status_503, Failure::status_429, Failure::hang,
                                         Failure::reset),
                       ::testing::Bool(), ::testing::Bool()),
    [](const ::testing::TestParamInfo<MatrixParam>& param_info) {
        return failure_name(std::get<0>(param_info.param)) +
               (std::get<1>(param_info.param) ? "_Fallback" : "_NoFallback") +
               (std::get<2>(param_info.param) ? "_Stream" : "_NonStream");
    });

// ---------------------------------------------------------------------------------------------
// Retries, what is never retried, the route timeout

/// A primary simulator (with `primary_args`) and a healthy backup simulator, and a gateway whose
/// route `chat` the test shapes with `tweak`.
class FailoverTest : public ::testing::Test {
  protected:
    ::testing::AssertionResult start(std::vector<std::string> primary_args,
                                     const std::function<void(RouteYaml&, GatewayConfig&)>& tweak,
                                     bool with_fallback = true) {
        primary_ = std::make_unique<SimulatorProcess>(std::move(primary_args));
        if (auto ok = primary_->start(); !ok) return ok;
        if (auto ok = backup_.start(); !ok) return ok;
        config_.provider(provider("primary", primary_->base_url()));
        config_.provider(provider("backup", backup_.base_url()));
        RouteYaml route = chat_route(with_fallback);
        if (tweak) tweak(route, config_);
        config_.route(route);
        return start_gateway(gateway_, config_);
    }

    std::unique_ptr<SimulatorProcess> primary_;
    SimulatorProcess backup_{{"--ttft", "0ms", "--tokens", "5"}};
    GatewayConfig config_;
    std::unique_ptr<GatewayProcess> gateway_;
};

TEST_F(FailoverTest, RetriesMakeTheFailingPrimaryGetThreeRequests) {
    ASSERT_TRUE(start(
        {"--fault-status", "503"},
        [](RouteYaml& r, GatewayConfig& c) {
            r.retry_attempts = 2;
            r.retry_backoff = "20ms";
            // Six 503s in a row: retries are under test here, not the circuit breaker
            // (hostile_test.cpp), which would open after five.
            c.provider_option("primary", "circuit_breaker", "{failures: 0}");
        },
        false));
    for (bool stream : {false, true}) {
        SCOPED_TRACE(stream ? "streamed" : "not streamed");
        ASSERT_TRUE(primary_->reset());
        auto response = gateway_->chat(chat_body("chat", stream));
        ASSERT_TRUE(response);
        EXPECT_TRUE(is_simulated_failure(*response, 503)) << "the last answer passes through";
        EXPECT_EQ(response->header("x-turnout-target"), kPrimaryTarget);
        EXPECT_EQ(primary_->stat("requests"), 3) << "1 + retries.attempts (2)";
    }
    EXPECT_EQ(backup_.stat("requests"), 0);
}

TEST_F(FailoverTest, RetriesThenTheFallbackWithItsOwnRetries) {
    SimulatorProcess failing_backup({"--fault-status", "500"});
    ASSERT_TRUE(failing_backup.start());
    ASSERT_TRUE(start({"--fault-status", "503"}, [&](RouteYaml& r, GatewayConfig& c) {
        r.retry_attempts = 2;
        r.retry_backoff = "20ms";
        // Fallbacks in order: a failing one first (also retried), then the healthy backup.
        c.provider(provider("broken", failing_backup.base_url()));
        r.fallbacks = {{"broken", "broken-model"}, {"backup", "backup-model"}};
    }));
    auto response = gateway_->chat(chat_body("chat"));
    ASSERT_TRUE(response);
    EXPECT_TRUE(is_complete_answer(*response, false));
    EXPECT_EQ(response->header("x-turnout-target"), kBackupTarget);
    EXPECT_EQ(primary_->stat("requests"), 3);
    EXPECT_EQ(failing_backup.stat("requests"), 3) << "each fallback is retried too";
    EXPECT_EQ(backup_.stat("requests"), 1);
}

TEST_F(FailoverTest, FallbacksAreTriedInOrderPastARefusedOne) {
    ClosedPort closed;
    ASSERT_TRUE(start({"--fault-status", "502"}, [&](RouteYaml& r, GatewayConfig& c) {
        c.provider(
            provider("refused", "http://127.0.0.1:" + std::to_string(closed.port()) + "/v1"));
        r.fallbacks = {{"refused", "refused-model"}, {"backup", "backup-model"}};
    }));
    auto response = gateway_->chat(chat_body("chat", true));
    ASSERT_TRUE(response);
    EXPECT_TRUE(is_complete_answer(*response, true));
    EXPECT_EQ(response->header("x-turnout-target"), kBackupTarget);
    EXPECT_EQ(primary_->stat("requests"), 1);
    EXPECT_EQ(backup_.stat("requests"), 1);
}

TEST_F(FailoverTest, WhenEverythingFailsTheLastUpstreamAnswerPassesThrough) {
    SimulatorProcess limited({"--fault-status", "429"});
    ASSERT_TRUE(limited.start());
    ASSERT_TRUE(start({"--fault-status", "503"}, [&](RouteYaml& r, GatewayConfig& c) {
        c.provider(provider("limited", limited.base_url()));
        r.fallbacks = {{"limited", "limited-model"}};
    }));
    auto response = gateway_->chat(chat_body("chat"));
    ASSERT_TRUE(response);
    EXPECT_TRUE(is_simulated_failure(*response, 429));
    EXPECT_EQ(response->header("retry-after"), "1");
    EXPECT_EQ(response->header("x-turnout-target"), "limited/limited-model");
    EXPECT_EQ(primary_->stat("requests"), 1);
    EXPECT_EQ(limited.stat("requests"), 1);
    EXPECT_EQ(backup_.stat("requests"), 0);
}

// A 4xx other than 429 is the client's problem: the same request would fail anywhere.
TEST_F(FailoverTest, Upstream400IsNeitherRetriedNorFailedOver) {
    ASSERT_TRUE(start({"--ttft", "0ms"}, [](RouteYaml& r, GatewayConfig&) {
        r.retry_attempts = 2;
        r.retry_backoff = "20ms";
    }));
    // The header reaches every attempt; only the primary may be asked.
    for (bool stream : {false, true}) {
        SCOPED_TRACE(stream ? "streamed" : "not streamed");
        ASSERT_TRUE(primary_->reset());
        auto response = gateway_->chat(chat_body("chat", stream), {{"x-sim-status", "400"}});
        ASSERT_TRUE(response);
        EXPECT_TRUE(is_simulated_failure(*response, 400));
        EXPECT_EQ(response->header("x-turnout-target"), kPrimaryTarget);
        EXPECT_EQ(primary_->stat("requests"), 1);
        EXPECT_EQ(backup_.stat("requests"), 0);
    }
}

// Once frames reached the client, a failure ends the stream: no retry, no fallback, no splice.
TEST_F(FailoverTest, MidStreamFailureIsNotRetried) {
    ASSERT_TRUE(start({"--ttft", "0ms", "--tokens", "10"}, [](RouteYaml& r, GatewayConfig&) {
        r.retry_attempts = 2;
        r.retry_backoff = "20ms";
    }));
    RawConnection client(gateway_->api_port());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(
        client.send_request("POST", "/v1/chat/completions",
                            {{"Content-Type", "application/json"}, {"x-sim-reset-after", "3"}},
                            chat_body("chat", true)));
    SseStreamReader reader(client);
    auto head = reader.read_head(kWait);
    ASSERT_TRUE(head) << client.error();
    ASSERT_EQ(head->status, 200);
    EXPECT_EQ(head->header("x-turnout-target"), kPrimaryTarget);
    auto events = reader.read_all(kWait);
    ASSERT_FALSE(events.empty()) << reader.body_so_far();
    int content_frames = 0;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        EXPECT_FALSE(json_at(parse_json(events[i]), "error")) << events[i];
        if (!delta_content(events[i]).empty()) ++content_frames;
    }
    EXPECT_EQ(content_frames, 3) << "exactly the primary's frames, nothing spliced in: "
                                 << reader.body_so_far();
    EXPECT_EQ(json_string(parse_json(events.back()), "error/code"), "upstream_stream_failed")
        << reader.body_so_far();
    for (const auto& e : events) EXPECT_NE(e, "[DONE]");
    EXPECT_TRUE(client.wait_closed_by_peer(kWait));
    EXPECT_EQ(primary_->stat("requests"), 1) << "a started stream is never retried";
    EXPECT_EQ(backup_.stat("requests"), 0) << "a started stream never fails over";
}

TEST_F(FailoverTest, RouteTimeoutBoundsRetries) {
    // The first backoff is 1 to 2 s (full jitter), past the 500ms route timeout: bounded, the
    // first answer is the last. Unbounded, the retries back off 1-2, 2-4, 4-8, 8-16 s...: the
    // primary gets a second request within 2 s, and the client's wait (kTimeoutWait) may well
    // end before any answer.
    ASSERT_TRUE(start(
        {"--fault-status", "503"},
        [](RouteYaml& r, GatewayConfig&) {
            r.retry_attempts = 5;
            r.retry_backoff = "2s";
            r.timeout = "500ms";
        },
        false));
    auto response = gateway_->chat(chat_body("chat"), {}, kTimeoutWait);
    ASSERT_TRUE(response) << "the route timeout (500ms) did not bound the retries";
    // Either the last upstream answer or the gateway's own timeout: both are sound endings.
    EXPECT_TRUE(response->status == 503 || response->status == 504)
        << response->status << ": " << response->body;
    if (response->status == 504) {
        EXPECT_TRUE(is_openai_error(response, 504, "upstream_timeout", "upstream_error"));
    }
    EXPECT_EQ(primary_->stat("requests"), 1) << "a retry ran past the route timeout";
}

TEST_F(FailoverTest, RouteTimeoutBoundsRetriesAndFallbacksOfAHangingPrimary) {
    ASSERT_TRUE(start({"--fault-hang"}, [](RouteYaml& r, GatewayConfig& c) {
        c.provider_option("primary", "timeout", "300ms");
        c.provider_option("primary", "first_byte_timeout", "300ms");
        r.retry_attempts = 5;
        r.retry_backoff = "200ms";
        r.timeout = "500ms";
    }));
    // Unbounded, six 300ms attempts and their backoffs (some 5 to 8 s) end at the fallback,
    // which answers 200 well within the client's wait: the 504 is the route timeout's.
    for (bool stream : {false, true}) {
        SCOPED_TRACE(stream ? "streamed" : "not streamed");
        auto started = Clock::now();
        auto response = gateway_->chat(chat_body("chat", stream), {}, kTimeoutWait);
        auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
        EXPECT_TRUE(is_openai_error(response, 504, "upstream_timeout", "upstream_error"))
            << "the route timeout (500ms) did not bound the request";
        EXPECT_GE(elapsed, 250);
    }
    EXPECT_EQ(backup_.stat("requests"), 0)
        << "six 300ms attempts cannot fit in 500ms, so the fallback is never reached";
}

// The primary hangs for good and its other timeouts and the route's are kNeverTimeout: only
// first_byte_timeout can end the first attempt within the client's wait.
TEST_F(FailoverTest, HangingPrimaryFailsOverWithinTheFirstByteTimeout) {
    ASSERT_TRUE(start({"--fault-hang"}, [](RouteYaml& r, GatewayConfig& c) {
        c.provider_option("primary", "first_byte_timeout", "300ms");
        c.provider_option("primary", "timeout", kNeverTimeout);
        r.timeout = kNeverTimeout;
    }));
    auto started = Clock::now();
    auto response = gateway_->chat(chat_body("chat", true), {}, kTimeoutWait);
    auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
    ASSERT_TRUE(response) << "first_byte_timeout (300ms) did not end the first attempt";
    EXPECT_TRUE(is_complete_answer(*response, true));
    EXPECT_EQ(response->header("x-turnout-target"), kBackupTarget);
    EXPECT_GE(elapsed, 250) << "failed over before first_byte_timeout";
    EXPECT_EQ(primary_->stat("requests"), 1);
    EXPECT_EQ(backup_.stat("requests"), 1);
}

}  // namespace
}  // namespace turnout::test
