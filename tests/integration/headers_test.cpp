// Which headers cross the gateway: client credentials and hop-by-hop headers stay behind, the
// provider key is added, ordinary headers and the request id go through, secrets stay out of
// the logs.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

class HeadersTest : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(stack_.start()); }

    std::optional<RecordedRequest> send_and_record(const Headers& headers,
                                                   std::optional<HttpResponse>* out = nullptr) {
        auto response = stack_.gateway().chat(chat_body("smart"), headers);
        EXPECT_TRUE(response);
        if (response) {
            EXPECT_EQ(response->status, 200) << response->body;
        }
        if (out) *out = response;
        return stack_.sim().last_request();
    }

    GatewayStack stack_;
};

TEST_F(HeadersTest, ClientCredentialsAreReplacedByTheProviderKey) {
    auto recorded = send_and_record(
        {{"Authorization", "Bearer client-secret-aaaa"}, {"x-api-key", "client-secret-bbbb"}});
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->header("authorization"), std::string("Bearer ") + GatewayConfig::kSimKey);
    EXPECT_FALSE(recorded->has_header("x-api-key")) << recorded->header("x-api-key");
    for (const auto& [name, value] : recorded->headers) {
        EXPECT_EQ(value.find("client-secret"), std::string::npos)
            << "client credential forwarded in " << name;
    }
}

TEST_F(HeadersTest, ProviderKeyIsSentWithoutAClientKey) {
    auto recorded = send_and_record({});
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->header("authorization"), std::string("Bearer ") + GatewayConfig::kSimKey);
}

TEST_F(HeadersTest, HopByHopHeadersAreNotForwarded) {
    auto recorded = send_and_record({{"Connection", "keep-alive, x-drop-me"},
                                     {"x-drop-me", "1"},
                                     {"Keep-Alive", "timeout=5"},
                                     {"TE", "trailers"},
                                     {"Proxy-Connection", "keep-alive"},
                                     {"Upgrade", "websocket"},
                                     {"x-team", "a"}});
    ASSERT_TRUE(recorded);
    EXPECT_FALSE(recorded->has_header("x-drop-me")) << "a header named in Connection crossed";
    EXPECT_FALSE(recorded->has_header("keep-alive"));
    EXPECT_FALSE(recorded->has_header("te"));
    EXPECT_FALSE(recorded->has_header("proxy-connection"));
    EXPECT_FALSE(recorded->has_header("upgrade"));
    EXPECT_EQ(to_lower(recorded->header("connection")).find("x-drop-me"), std::string::npos);
    EXPECT_EQ(recorded->header("x-team"), "a") << "an ordinary header was not forwarded";
}

TEST_F(HeadersTest, ClientAssertedAddressesAndProxyCredentialsStayBehind) {
    auto recorded = send_and_record({{"X-Forwarded-For", "203.0.113.7"},
                                     {"Forwarded", "for=203.0.113.7"},
                                     {"X-Real-IP", "203.0.113.7"},
                                     {"X_Forwarded_For", "203.0.113.8"},
                                     {"Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"},
                                     {"x-team", "a"}});
    ASSERT_TRUE(recorded);
    for (const auto& [name, value] : recorded->headers) {
        EXPECT_EQ(value.find("203.0.113."), std::string::npos)
            << "client address crossed in " << name;
        EXPECT_EQ(name.find('_'), std::string::npos) << "underscore header crossed: " << name;
    }
    EXPECT_FALSE(recorded->has_header("proxy-authorization"));
    EXPECT_EQ(recorded->header("x-team"), "a");
}

TEST_F(HeadersTest, OrdinaryHeadersAreForwarded) {
    auto recorded = send_and_record({{"x-team", "blue"}, {"OpenAI-Organization", "org-123"}});
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->header("x-team"), "blue");
    EXPECT_EQ(recorded->header("openai-organization"), "org-123");
    // The gateway frames the body itself.
    EXPECT_EQ(recorded->header("content-length"), std::to_string(recorded->body.size()));
}

TEST_F(HeadersTest, ClientRequestIdIsEchoedAndForwarded) {
    std::optional<HttpResponse> response;
    auto recorded = send_and_record({{"x-request-id", "client-req-42"}}, &response);
    ASSERT_TRUE(recorded && response);
    EXPECT_EQ(response->header("x-request-id"), "client-req-42");
    EXPECT_EQ(response->header_count("x-request-id"), 1u);
    EXPECT_EQ(recorded->header("x-request-id"), "client-req-42");
}

TEST_F(HeadersTest, GeneratedRequestIdIsSentUpstream) {
    std::optional<HttpResponse> response;
    auto recorded = send_and_record({}, &response);
    ASSERT_TRUE(recorded && response);
    ASSERT_FALSE(response->header("x-request-id").empty());
    EXPECT_EQ(recorded->header("x-request-id"), response->header("x-request-id"));
}

TEST_F(HeadersTest, TheProviderKeyNeverAppearsInTheLogs) {
    send_and_record({{"x-request-id", "secret-check-1"}});
    // Also a failing request: error paths log more.
    stack_.gateway().chat(chat_body("smart"), {{"x-sim-status", "500"}});
    ASSERT_TRUE(stack_.gateway().wait_for_log(std::regex(R"("status":500)")));
    ASSERT_TRUE(stack_.gateway().wait_for_log(std::regex("secret-check-1")));
    for (const auto& line : stack_.gateway().log_lines()) {
        EXPECT_EQ(line.find(GatewayConfig::kSimKey), std::string::npos) << "secret in: " << line;
    }
}

TEST(ProviderHeadersTest, ExtraProviderHeadersAreAdded) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) {
        c.provider_option("sim", "headers", "{x-provider-extra: yes-please}");
    }));
    auto response = stack.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    auto recorded = stack.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->header("x-provider-extra"), "yes-please");
}

TEST(ProviderHeadersTest, NoKeyConfiguredSendsNoAuthorization) {
    GatewayStack stack;
    ASSERT_TRUE(stack.start([](GatewayConfig& c) { c.providers()[0].api_key_env.clear(); }));
    auto response =
        stack.gateway().chat(chat_body("smart"), {{"Authorization", "Bearer client-only"}});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    auto recorded = stack.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_FALSE(recorded->has_header("authorization")) << recorded->header("authorization");
}

}  // namespace
}  // namespace turnout::test
