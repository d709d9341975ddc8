// The judge and the mirror over real sockets, on simulated providers (tests/support/
// shadow_stack.hpp): a background call is bounded by its provider's own `timeout`; `judge.swap`
// judges each pair twice; `judge.body`, `judge.max_answer_bytes` and reasoning-model judges shape
// the judge request; verdicts that reached the log survive a kill -9.
//
// The simulated judge scores 100 when answer B equals answer A (both simulators answer the same
// text by default), so every pair here passes unless the candidate fails.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <string>

#include "tests/support/fixtures.hpp"
#include "tests/support/shadow_stack.hpp"

namespace turnout::test {
namespace {

constexpr const char* kRoute = ShadowStack::kRoute;

/// The judge block of route `chat`, written verbatim (the builder knows only the older keys).
void set_judge(GatewayConfig& config, const std::string& flow_yaml) {
    auto& route = config.route_named(kRoute);
    route.judge = {};
    route.extra_lines.push_back("judge: " + flow_yaml);
}

/// The body of the judge simulator's last request, parsed.
rapidjson::Document last_judge_request(ShadowStack& stack) {
    const auto request = stack.judge().last_request();
    if (!request) return parse_json("");
    return parse_json(request->body);
}

// The candidate hangs for good; the route timeout and the candidate's first-byte timeout are
// kNeverTimeout, so only the provider's own 1 s timeout can end the mirrored calls within the
// wait for their verdicts (kTimeoutWait).
TEST(JudgeTest, MirroredCallIsBoundByTheProvidersOwnTimeout) {
    ShadowStack stack({}, {"--fault-hang"});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.route_named(kRoute).timeout = kNeverTimeout;
        c.provider_option("fast", "timeout", "1s");
        c.provider_option("fast", "first_byte_timeout", kNeverTimeout);
    }));
    constexpr int kRequests = 3;
    ASSERT_TRUE(stack.send(kRequests, "hung"));
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc, kTimeoutWait))
        << "the provider's timeout (1s) did not end the mirrored calls";
    for (const auto& v : verdict_list(doc)->GetArray()) {
        EXPECT_EQ(json_string(v, "verdict"), "fail") << json_to_string(v);
        EXPECT_EQ(json_string(v, "reason"), "candidate failed: timeout") << json_to_string(v);
        const double latency = json_number(v, "candidate_latency_ms").value_or(-1);
        EXPECT_GE(latency, 900) << json_to_string(v);
    }
}

TEST(JudgeTest, SwapJudgesEachPairInBothOrders) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        set_judge(c, "{provider: judge, model: judge-model, swap: true}");
    }));
    constexpr int kRequests = 5;
    ASSERT_TRUE(stack.send(kRequests, "swap"));
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc));
    for (const auto& v : verdict_list(doc)->GetArray()) {
        EXPECT_EQ(json_string(v, "verdict"), "pass") << json_to_string(v);
        EXPECT_EQ(json_number(v, "score"), 100.0) << json_to_string(v);
    }
    // Two judge calls per pair, the documented cost.
    EXPECT_TRUE(stack.judge().wait_for_stat("judge_replies", 2 * kRequests));
}

TEST(JudgeTest, BodyRemovesAndAddsFieldsAndLongAnswersAreCut) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        set_judge(c,
                  "{provider: judge, model: judge-model, max_answer_bytes: 8B, "
                  "body: {temperature: null, seed: 7}}");
    }));
    ASSERT_TRUE(stack.send(1, "body"));
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(1, doc));
    const rapidjson::Document request = last_judge_request(stack);
    ASSERT_TRUE(request.IsObject()) << stack.judge().output();
    EXPECT_FALSE(request.HasMember("temperature")) << json_to_string(request);
    EXPECT_EQ(json_number(request, "seed"), 7.0) << json_to_string(request);
    EXPECT_TRUE(json_number(request, "max_tokens")) << json_to_string(request);
    const std::string prompt = json_to_string(request);
    EXPECT_NE(prompt.find("[... truncated by turnout: 8 of "), std::string::npos) << prompt;
}

TEST(JudgeTest, ReasoningModelJudgeGetsMaxCompletionTokensAndNoTemperature) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(
        stack.start([](GatewayConfig& c) { set_judge(c, "{provider: judge, model: o4-mini}"); }));
    ASSERT_TRUE(stack.send(1, "reasoning"));
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(1, doc));
    EXPECT_EQ(json_string(*verdict_list(doc)->Begin(), "verdict"), "pass") << json_to_string(doc);
    const rapidjson::Document request = last_judge_request(stack);
    ASSERT_TRUE(request.IsObject());
    EXPECT_EQ(json_string(request, "model"), "o4-mini");
    EXPECT_FALSE(request.HasMember("temperature")) << json_to_string(request);
    EXPECT_FALSE(request.HasMember("max_tokens")) << json_to_string(request);
    EXPECT_GE(json_number(request, "max_completion_tokens").value_or(0), 16384.0)
        << json_to_string(request);
}

/// Verdict lines of route `chat` in the state directory's current verdict log.
std::size_t logged_verdicts(const std::string& state_dir) {
    std::ifstream in(state_dir + "/verdicts.jsonl");
    std::size_t count = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.find("\"route\":\"chat\"") != std::string::npos) ++count;
    }
    return count;
}

TEST(JudgeTest, VerdictsOnDiskSurviveSigkill) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        auto& promotion = c.route_named(kRoute).promotion;
        promotion.mode = "shadow";  // no transition (whose save would sync the state)
        promotion.window = 1000;
    }));
    constexpr int kRequests = 40;
    ASSERT_TRUE(stack.send(kRequests, "before-kill"));
    rapidjson::Document doc;
    ASSERT_TRUE(stack.wait_for_verdicts(kRequests, doc));
    // At once: the state is saved once a second, so the newest verdicts are only in the log.
    ASSERT_TRUE(stack.gateway().send_signal(SIGKILL));
    ASSERT_TRUE(stack.gateway().wait_exit());
    const std::size_t on_disk = logged_verdicts(stack.state_dir());
    ASSERT_GE(on_disk, static_cast<std::size_t>(kRequests));

    GatewayOptions options;
    options.yaml = stack.yaml();
    GatewayProcess restarted(options);
    ASSERT_TRUE(restarted.start());
    const auto route = restarted.admin_route(kRoute);
    ASSERT_FALSE(route.HasParseError());
    EXPECT_EQ(json_number(route, "samples"), static_cast<double>(on_disk)) << json_to_string(route);
    EXPECT_EQ(json_number(route, "total_verdicts"), static_cast<double>(on_disk))
        << json_to_string(route);
}

}  // namespace
}  // namespace turnout::test
