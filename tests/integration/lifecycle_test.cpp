// Process life cycle: start-up refusals, the admin health endpoints, graceful shutdown.

#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

TEST(AdminTest, HealthzAndReadyzAnswer200) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    auto port = stack.gateway().admin_port();
    ASSERT_NE(port, stack.api_port());
    auto health = http_request(port, "GET", "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200) << health->body;
    auto ready = http_request(port, "GET", "/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 200) << ready->body;
}

TEST(AdminTest, HealthEndpointsAreNotOnTheApiPort) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    auto response = stack.gateway().request("GET", "/healthz");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 404);
}

// Clients filling max_connections must not starve the admin listener (liveness probes, scrapes,
// reloads): admin connections are outside the limit.
TEST(AdminTest, AdminAnswersWhileClientsHoldEveryConnection) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) { c.limit("max_connections", "2"); }));
    // Kept-alive client connections, each served once so that the gateway counts it; with two
    // workers (one connection each) the later ones wait in the accept queue.
    // The first is always served (nothing holds a slot yet): its answer is awaited. The later
    // ones get a short look; a slow machine can only make fewer of them count as served.
    std::vector<std::unique_ptr<RawConnection>> clients;
    int served = 0;
    for (int i = 0; i < 6; ++i) {
        auto client = std::make_unique<RawConnection>(stack.gateway().api_port());
        ASSERT_TRUE(client->connected());
        ASSERT_TRUE(client->send_request("GET", "/v1/models", {}));
        const Millis look = i == 0 ? kWait : Millis(300);
        if (auto answer = client->read_response(look); answer && answer->status == 200) {
            ++served;
        }
        clients.push_back(std::move(client));
    }
    ASSERT_GE(served, 1);
    ASSERT_LT(served, 6) << "max_connections did not hold any connection back";
    auto health = http_request(stack.gateway().admin_port(), "GET", "/healthz");
    ASSERT_TRUE(health) << "the admin listener did not answer while clients held the limit";
    EXPECT_EQ(health->status, 200);
}

// Metrics are recorded once the answer is out, so a scrape right after it may come first:
// wait for the count (a scrape is asynchronous anyway), then check the exposition.
TEST(AdminTest, MetricsCountRequests) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    auto chat = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(chat);
    ASSERT_EQ(chat->status, 200);
    EXPECT_TRUE(stack.gateway().wait_for_metric(
        "turnout_requests_total", {{"route", "smart"}, {"code", "200"}},
        [](double v) { return v == 1; }, "== 1"));
    auto metrics = http_request(stack.gateway().admin_port(), "GET", "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 200);
    EXPECT_NE(metrics->header("content-type").find("text/plain"), std::string::npos);
    EXPECT_TRUE(std::regex_search(
        metrics->body, std::regex(R"(turnout_requests_total\{[^}]*route="smart"[^}]*\} 1)")))
        << metrics->body;
}

TEST(LifecycleTest, ServeRefusesToStartWithoutTheProviderKey) {
    SimulatorProcess sim;
    ASSERT_TRUE(sim.start());
    GatewayOptions options;
    options.yaml = GatewayConfig::for_simulator(sim.base_url()).yaml();
    options.env.clear();
    options.unset_env = {GatewayConfig::kSimKeyEnv};
    GatewayProcess gateway(options);
    EXPECT_FALSE(gateway.start());
    auto code = gateway.wait_exit(kWait);
    ASSERT_TRUE(code) << "the gateway kept running without its provider key";
    EXPECT_EQ(*code, 2);
    EXPECT_NE(gateway.log_text().find(GatewayConfig::kSimKeyEnv), std::string::npos)
        << gateway.log_text();
}

TEST(LifecycleTest, ServeRefusesAnInvalidConfig) {
    GatewayOptions options;
    options.yaml = "listen: 127.0.0.1:0\nbogus_key: 1\n";
    GatewayProcess gateway(options);
    EXPECT_FALSE(gateway.start());
    auto code = gateway.wait_exit(kWait);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 2);
    EXPECT_TRUE(std::regex_search(gateway.log_text(), std::regex(R"(turnout\.yaml:2:1: )")))
        << gateway.log_text();
}

TEST(LifecycleTest, SigtermDrainsAnInFlightStreamAndExitsZero) {
    // The upstream holds the stream after its first frame until the test opens its gate, so
    // the signal provably comes mid-stream however slow the machine; the drain deadline is
    // kNeverTimeout, so the stream can only end by finishing.
    constexpr std::size_t kFrames = 30;
    GatedUpstream upstream(kFrames, 1);
    GatewayConfig config = GatewayConfig::for_simulator(upstream.base_url());
    config.limit("drain_timeout", kNeverTimeout);
    GatewayOptions options;
    options.yaml = config.yaml();
    GatewayProcess gateway(options);
    ASSERT_TRUE(gateway.start());
    const auto port = gateway.api_port();

    RawConnection client(port);
    ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                    {{"Content-Type", "application/json"}},
                                    chat_body("smart", true)));
    SseStreamReader reader(client);
    auto head = reader.read_head(kWait);
    ASSERT_TRUE(head) << client.error();
    ASSERT_EQ(head->status, 200);
    ASSERT_TRUE(reader.next_event(kWait));

    ASSERT_TRUE(gateway.send_signal(SIGTERM));
    // New connections are refused while the stream is still draining.
    EXPECT_TRUE(wait_for([&] { return connect_refused(port); }, kWait,
                         "the api listener to close after SIGTERM"));
    EXPECT_EQ(upstream.answers_finished(), 0) << "the stream ended before the check";
    EXPECT_TRUE(gateway.process().running()) << "the gateway exited with a stream in flight";

    upstream.open_gate();
    auto events = reader.read_all(Millis(15000));
    ASSERT_FALSE(events.empty()) << reader.body_so_far();
    EXPECT_EQ(events.back(), "[DONE]") << reader.body_so_far();
    EXPECT_GE(events.size(), kFrames);
    EXPECT_EQ(reader.state(), SseStreamReader::State::ended);
    EXPECT_TRUE(upstream.wait_for_answers_finished(1));

    auto code = gateway.wait_exit(kWait);
    ASSERT_TRUE(code) << "the gateway did not exit after draining";
    EXPECT_EQ(*code, 0);
    EXPECT_TRUE(connect_refused(port));
}

TEST(LifecycleTest, SigtermRightAfterTheListeningLinesExitsZero) {
    // An orchestrator may stop the process as soon as it reports its ports: by then the
    // shutdown signals must already be handled (not the default action, exit 143).
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    ASSERT_TRUE(stack.gateway().send_signal(SIGTERM));
    auto code = stack.gateway().wait_exit(kWait);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0) << stack.gateway().log_text();
}

// An idle connection has nothing to drain: it must not hold the process for the drain
// deadline. The deadline and the keep-alive timeout are kNeverTimeout, so an exit within the
// wait (kTimeoutWait) shows that the idle connection was closed at once.
TEST(LifecycleTest, SigtermWithAnIdleKeptAliveConnectionExitsPromptly) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.limit("drain_timeout", kNeverTimeout);
        c.limit("keepalive_timeout", kNeverTimeout);
    }));
    RawConnection idle(stack.api_port());
    ASSERT_TRUE(idle.send_request("GET", "/v1/models", {}));
    auto response = idle.read_response(kWait);
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200);

    ASSERT_TRUE(stack.gateway().send_signal(SIGTERM));
    auto code = stack.gateway().wait_exit(kTimeoutWait);
    ASSERT_TRUE(code) << "the idle connection held the drain";
    EXPECT_EQ(*code, 0);
    EXPECT_TRUE(idle.wait_closed_by_peer(kWait));
}

}  // namespace
}  // namespace turnout::test
