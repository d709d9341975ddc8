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
    std::vector<std::unique_ptr<RawConnection>> clients;
    int served = 0;
    for (int i = 0; i < 6; ++i) {
        auto client = std::make_unique<RawConnection>(stack.gateway().api_port());
        ASSERT_TRUE(client->connected());
        ASSERT_TRUE(client->send_request("GET", "/v1/models", {}));
        if (auto answer = client->read_response(Millis(300)); answer && answer->status == 200) {
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
    GatewayStack stack({"--tps", "10", "--tokens", "30", "--ttft", "0ms"});
    ASSERT_TRUE(stack.start());
    const auto port = stack.api_port();

    RawConnection client(port);
    ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                    {{"Content-Type", "application/json"}},
                                    chat_body("smart", true)));
    SseStreamReader reader(client);
    auto head = reader.read_head(kWait);
    ASSERT_TRUE(head) << client.error();
    ASSERT_EQ(head->status, 200);
    ASSERT_TRUE(reader.next_event(kWait));
    ASSERT_EQ(stack.sim().stat("streams_completed"), 0);

    ASSERT_TRUE(stack.gateway().send_signal(SIGTERM));
    // New connections are refused while the stream is still draining.
    EXPECT_TRUE(wait_for([&] { return connect_refused(port); }, kWait,
                         "the api listener to close after SIGTERM"));
    EXPECT_EQ(stack.sim().stat("streams_completed"), 0) << "the stream ended before the check";

    auto events = reader.read_all(Millis(15000));
    ASSERT_FALSE(events.empty()) << reader.body_so_far();
    EXPECT_EQ(events.back(), "[DONE]") << reader.body_so_far();
    EXPECT_GE(events.size(), 30u);
    EXPECT_EQ(reader.state(), SseStreamReader::State::ended);
    // The simulator counts the stream once its last write completed: wait, do not race it.
    EXPECT_TRUE(stack.sim().wait_for_stat("streams_completed", 1));

    auto code = stack.gateway().wait_exit(kWait);
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

TEST(LifecycleTest, SigtermWithAnIdleKeptAliveConnectionExitsPromptly) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    RawConnection idle(stack.api_port());
    ASSERT_TRUE(idle.send_request("GET", "/v1/models", {}));
    auto response = idle.read_response(kWait);
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200);

    auto started = Clock::now();
    ASSERT_TRUE(stack.gateway().send_signal(SIGTERM));
    auto code = stack.gateway().wait_exit(kWait);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0);
    // An idle connection has nothing to drain: it must not hold the process for the whole
    // drain deadline (10 s by default).
    EXPECT_LT(std::chrono::duration_cast<Millis>(Clock::now() - started).count(), 5000);
    EXPECT_TRUE(idle.wait_closed_by_peer(kWait));
}

}  // namespace
}  // namespace turnout::test
