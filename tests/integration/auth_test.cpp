// Client keys (`keys:`): 401 in OpenAI's shape without a valid key (also on GET /v1/models),
// `Authorization: Bearer` and `x-api-key` accepted, the key's name (never its value) in the
// access log, the client key never forwarded upstream; no `keys:` section, no auth.
// Target and provider extras (Anthropic's fast mode): `headers` and `body` reach the upstream.

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

constexpr const char* kTeamAKey = "sk-team-a-91c3e7f05b2d4a68";
constexpr const char* kTeamBKey = "sk-team-b-2f8d6a0c4e1b7395";
constexpr const char* kWrongKey = "sk-wrong-5a1e9c3f7b2d";

class ClientKeysTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(stack_.start(
            [](GatewayConfig& c) {
                c.client_key("team-a", "TEAM_A_KEY").client_key("team-b", "TEAM_B_KEY");
            },
            {{"TEAM_A_KEY", kTeamAKey}, {"TEAM_B_KEY", kTeamBKey}}));
    }

    static std::string bearer(const std::string& key) { return "Bearer " + key; }

    GatewayStack stack_;
};

TEST_F(ClientKeysTest, MissingKeyIs401) {
    auto response = stack_.gateway().chat(chat_body("smart"));
    EXPECT_TRUE(is_openai_error(response, 401, "invalid_api_key", "invalid_request_error"));
    EXPECT_EQ(stack_.sim().stat("requests"), 0) << "an unauthenticated request went upstream";
}

TEST_F(ClientKeysTest, WrongKeyIs401) {
    const Headers attempts[] = {
        {{"Authorization", bearer(kWrongKey)}},
        {{"x-api-key", kWrongKey}},
        {{"Authorization", std::string("Basic ") + kTeamAKey}},
        {{"Authorization", kTeamAKey}},  // no scheme
        {{"Authorization", "Bearer "}},
        {{"Authorization", bearer(std::string(kTeamAKey).substr(0, 10))}},  // a prefix
        {{"Authorization", bearer(std::string(kTeamAKey) + "0")}},          // one more char
        {{"x-api-key", ""}},
    };
    for (const auto& headers : attempts) {
        SCOPED_TRACE(headers[0].first + ": " + headers[0].second);
        auto response = stack_.gateway().chat(chat_body("smart"), headers);
        EXPECT_TRUE(is_openai_error(response, 401, "invalid_api_key", "invalid_request_error"));
    }
    EXPECT_EQ(stack_.sim().stat("requests"), 0);
}

TEST_F(ClientKeysTest, BearerAndXApiKeyAreAccepted) {
    auto by_bearer =
        stack_.gateway().chat(chat_body("smart"), {{"Authorization", bearer(kTeamAKey)}});
    ASSERT_TRUE(by_bearer);
    EXPECT_EQ(by_bearer->status, 200) << by_bearer->body;
    EXPECT_EQ(by_bearer->header("x-turnout-target"), "sim/sim-large");
    auto by_header = stack_.gateway().chat(chat_body("smart"), {{"x-api-key", kTeamBKey}});
    ASSERT_TRUE(by_header);
    EXPECT_EQ(by_header->status, 200) << by_header->body;
    auto streamed =
        stack_.gateway().chat(chat_body("smart", true), {{"Authorization", bearer(kTeamBKey)}});
    ASSERT_TRUE(streamed);
    EXPECT_EQ(streamed->status, 200) << streamed->body;
    EXPECT_EQ(stack_.sim().stat("requests"), 3);
}

TEST_F(ClientKeysTest, ModelsNeedsTheKeyToo) {
    auto without = stack_.gateway().request("GET", "/v1/models");
    EXPECT_TRUE(is_openai_error(without, 401, "invalid_api_key", "invalid_request_error"));
    auto wrong =
        stack_.gateway().request("GET", "/v1/models", {{"Authorization", bearer(kWrongKey)}});
    EXPECT_TRUE(is_openai_error(wrong, 401, "invalid_api_key", "invalid_request_error"));
    auto with =
        stack_.gateway().request("GET", "/v1/models", {{"Authorization", bearer(kTeamAKey)}});
    ASSERT_TRUE(with);
    EXPECT_EQ(with->status, 200) << with->body;
    EXPECT_EQ(json_string(parse_json(with->body), "object"), "list") << with->body;
    auto by_header = stack_.gateway().request("GET", "/v1/models", {{"x-api-key", kTeamBKey}});
    ASSERT_TRUE(by_header);
    EXPECT_EQ(by_header->status, 200) << by_header->body;
}

TEST_F(ClientKeysTest, AccessLogNamesTheKeyAndNeverItsValue) {
    ASSERT_TRUE(stack_.gateway().chat(chat_body("smart"), {{"Authorization", bearer(kTeamAKey)},
                                                           {"x-request-id", "auth-log-a"}}));
    ASSERT_TRUE(stack_.gateway().chat(chat_body("smart"),
                                      {{"x-api-key", kTeamBKey}, {"x-request-id", "auth-log-b"}}));
    ASSERT_TRUE(stack_.gateway().chat(chat_body("smart"), {{"Authorization", bearer(kWrongKey)},
                                                           {"x-request-id", "auth-log-x"}}));

    std::string line;
    ASSERT_TRUE(
        stack_.gateway().wait_for_log(std::regex(R"("request_id":"auth-log-a")"), kWait, &line));
    auto doc = parse_json(line);
    ASSERT_FALSE(doc.HasParseError()) << line;
    EXPECT_EQ(json_string(doc, "logger"), "access") << line;
    EXPECT_EQ(json_string(doc, "key"), "team-a") << line;

    ASSERT_TRUE(
        stack_.gateway().wait_for_log(std::regex(R"("request_id":"auth-log-b")"), kWait, &line));
    EXPECT_EQ(json_string(parse_json(line), "key"), "team-b") << line;

    ASSERT_TRUE(
        stack_.gateway().wait_for_log(std::regex(R"("request_id":"auth-log-x")"), kWait, &line));
    auto rejected = parse_json(line);
    const auto* status = json_at(rejected, "status");
    ASSERT_TRUE(status && status->IsInt()) << line;
    EXPECT_EQ(status->GetInt(), 401) << line;
    auto key = json_string(rejected, "key");
    EXPECT_TRUE(!key || key->empty()) << "a rejected request has no key name: " << line;

    for (const auto& l : stack_.gateway().log_lines()) {
        for (const char* secret : {kTeamAKey, kTeamBKey, kWrongKey}) {
            EXPECT_EQ(l.find(secret), std::string::npos) << "key value in the log: " << l;
        }
    }
}

TEST_F(ClientKeysTest, TheClientKeyIsNeverForwardedUpstream) {
    for (const Headers& headers :
         {Headers{{"Authorization", bearer(kTeamAKey)}}, Headers{{"x-api-key", kTeamAKey}},
          Headers{{"Authorization", bearer(kTeamAKey)}, {"x-api-key", kTeamAKey}}}) {
        SCOPED_TRACE(headers.size() == 2 ? "both" : headers[0].first);
        auto response = stack_.gateway().chat(chat_body("smart"), headers);
        ASSERT_TRUE(response);
        ASSERT_EQ(response->status, 200) << response->body;
        auto recorded = stack_.sim().last_request();
        ASSERT_TRUE(recorded);
        EXPECT_EQ(recorded->header("authorization"),
                  std::string("Bearer ") + GatewayConfig::kSimKey);
        EXPECT_FALSE(recorded->has_header("x-api-key")) << recorded->header("x-api-key");
        for (const auto& [name, value] : recorded->headers) {
            EXPECT_EQ(value.find(kTeamAKey), std::string::npos)
                << "client key forwarded in " << name;
        }
        EXPECT_EQ(recorded->body.find(kTeamAKey), std::string::npos);
    }
}

TEST(NoClientKeysTest, WithoutAKeysSectionNoKeyIsNeeded) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start());
    auto response = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    auto models = stack.gateway().request("GET", "/v1/models");
    ASSERT_TRUE(models);
    EXPECT_EQ(models->status, 200) << models->body;
    // An arbitrary client credential is not checked either (and still not forwarded).
    auto with_key =
        stack.gateway().chat(chat_body("smart"), {{"Authorization", "Bearer anything"}});
    ASSERT_TRUE(with_key);
    EXPECT_EQ(with_key->status, 200) << with_key->body;
}

// ---------------------------------------------------------------------------------------------
// Fast mode: target and provider `headers` / `body` extras reach the upstream

constexpr const char* kFastBeta = "fast-mode-2026-02-01";

TEST(FastModeTest, TargetHeadersAndBodyReachAnOpenAiUpstream) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        auto& smart = c.route_named("smart");
        smart.primary.model = "sim-fast";
        smart.primary.headers = "{anthropic-beta: fast-mode-2026-02-01}";
        smart.primary.body = "{speed: fast}";
    }));
    for (bool stream : {false, true}) {
        SCOPED_TRACE(stream ? "streamed" : "not streamed");
        auto response = stack.gateway().chat(chat_body("smart", stream));
        ASSERT_TRUE(response);
        EXPECT_EQ(response->status, 200) << response->body;
        EXPECT_EQ(response->header("x-turnout-target"), "sim/sim-fast");
        auto recorded = stack.sim().last_request();
        ASSERT_TRUE(recorded);
        EXPECT_EQ(recorded->header("anthropic-beta"), kFastBeta);
        auto body = parse_json(recorded->body);
        ASSERT_FALSE(body.HasParseError()) << recorded->body;
        EXPECT_EQ(json_string(body, "speed"), "fast") << recorded->body;
        EXPECT_EQ(json_string(body, "model"), "sim-fast") << recorded->body;
        EXPECT_EQ(json_string(body, "messages/0/content"), "Say hello.") << recorded->body;
        const auto* stream_flag = json_at(body, "stream");
        EXPECT_EQ(stream, stream_flag && stream_flag->IsBool() && stream_flag->GetBool())
            << recorded->body;
        // The provider key is still the only credential.
        EXPECT_EQ(recorded->header("authorization"),
                  std::string("Bearer ") + GatewayConfig::kSimKey);
    }
    // Other routes do not get the extras.
    auto fast = stack.gateway().chat(chat_body("fast-1"));
    ASSERT_TRUE(fast);
    EXPECT_EQ(fast->status, 200);
    auto recorded = stack.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_FALSE(recorded->has_header("anthropic-beta"));
    EXPECT_FALSE(json_at(parse_json(recorded->body), "speed")) << recorded->body;
}

TEST(FastModeTest, ProviderExtrasApplyAndTargetExtrasOverrideThem) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.provider_option("sim", "headers", "{anthropic-beta: old-beta, x-provider-extra: p1}");
        c.provider_option("sim", "body", "{speed: slow, service_tier: flex}");
        auto& smart = c.route_named("smart");
        smart.primary.headers = "{anthropic-beta: fast-mode-2026-02-01}";
        smart.primary.body = "{speed: fast}";
    }));
    auto response = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    auto recorded = stack.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->header("anthropic-beta"), kFastBeta) << "the target's header wins";
    EXPECT_EQ(recorded->header("x-provider-extra"), "p1");
    auto body = parse_json(recorded->body);
    EXPECT_EQ(json_string(body, "speed"), "fast") << "the target's field wins: " << recorded->body;
    EXPECT_EQ(json_string(body, "service_tier"), "flex") << recorded->body;

    // A route without target extras gets the provider's.
    auto fast = stack.gateway().chat(chat_body("fast-1"));
    ASSERT_TRUE(fast);
    ASSERT_EQ(fast->status, 200) << fast->body;
    recorded = stack.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->header("anthropic-beta"), "old-beta");
    EXPECT_EQ(json_string(parse_json(recorded->body), "speed"), "slow") << recorded->body;
}

TEST(FastModeTest, AFallbackGetsItsOwnExtrasNotThePrimarys) {
    SimulatorProcess backup({"--ttft", "0ms"});
    ASSERT_TRUE(backup.start());
    GatewayStack stack({"--fault-status", "503"});
    ASSERT_TRUE(stack.start([&](GatewayConfig& c) {
        ProviderYaml p;
        p.name = "backup";
        p.base_url = backup.base_url();
        c.provider(p);
        auto& smart = c.route_named("smart");
        smart.primary.headers = "{anthropic-beta: fast-mode-2026-02-01}";
        smart.primary.body = "{speed: fast}";
        TargetYaml fallback{"backup", "backup-model"};
        fallback.body = "{service_tier: flex}";
        smart.fallbacks = {fallback};
    }));
    auto response = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->header("x-turnout-target"), "backup/backup-model");
    auto primary = stack.sim().last_request();
    ASSERT_TRUE(primary);
    EXPECT_EQ(json_string(parse_json(primary->body), "speed"), "fast") << primary->body;
    auto recorded = backup.last_request();
    ASSERT_TRUE(recorded);
    EXPECT_FALSE(recorded->has_header("anthropic-beta"));
    auto body = parse_json(recorded->body);
    EXPECT_FALSE(json_at(body, "speed")) << recorded->body;
    EXPECT_EQ(json_string(body, "service_tier"), "flex") << recorded->body;
    EXPECT_EQ(json_string(body, "model"), "backup-model") << recorded->body;
}

TEST(FastModeTest, AnthropicUpstreamGetsFastModeHeadersAndBody) {
    SimulatorProcess sim({"--kind", "anthropic", "--ttft", "0ms"});
    ASSERT_TRUE(sim.start()) << "turnout simulate --kind anthropic";
    GatewayConfig config;
    ProviderYaml p;
    p.name = "opus";
    p.kind = "anthropic";
    p.base_url = "http://127.0.0.1:" + std::to_string(sim.port());  // the host root
    p.api_key_env = GatewayConfig::kSimKeyEnv;
    config.provider(p);
    RouteYaml r;
    r.name = "smart";
    r.primary = {"opus", "claude-opus-4-6"};
    r.primary.headers = "{anthropic-beta: fast-mode-2026-02-01}";
    r.primary.body = "{speed: fast}";
    config.route(r);
    GatewayOptions options;
    options.yaml = config.yaml();
    GatewayProcess gateway(options);
    ASSERT_TRUE(gateway.start());

    auto response = gateway.chat(chat_body("smart"), {{"Authorization", "Bearer client-secret"}});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->header("x-turnout-target"), "opus/claude-opus-4-6");
    auto answer = parse_json(response->body);
    EXPECT_EQ(json_string(answer, "object"), "chat.completion") << response->body;
    EXPECT_TRUE(json_string(answer, "choices/0/message/content")) << response->body;

    auto recorded = sim.last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->target, "/v1/messages");
    EXPECT_EQ(recorded->header("x-api-key"), GatewayConfig::kSimKey);
    EXPECT_EQ(recorded->header("anthropic-version"), "2023-06-01");
    EXPECT_EQ(recorded->header("anthropic-beta"), kFastBeta);
    EXPECT_FALSE(recorded->has_header("authorization")) << recorded->header("authorization");
    auto body = parse_json(recorded->body);
    EXPECT_EQ(json_string(body, "speed"), "fast") << recorded->body;
    EXPECT_EQ(json_string(body, "model"), "claude-opus-4-6") << recorded->body;
}

}  // namespace
}  // namespace turnout::test
