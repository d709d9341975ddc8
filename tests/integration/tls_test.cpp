// TLS to the upstream: a private CA through `ca_file`, hostname verification, untrusted
// certificates.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

class TlsTest : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(ca_.create()); }

    /// A TLS simulator with a certificate for `dns_name`, and a gateway whose provider points at
    /// https://localhost:PORT/v1 (trusting the test CA when `trust_ca`).
    ::testing::AssertionResult start(const std::string& dns_name, bool trust_ca = true) {
        std::string error;
        auto cert = ca_.issue(dns_name, &error);
        if (!cert) return ::testing::AssertionFailure() << "openssl failed:\n" << error;
        stack_ = std::make_unique<GatewayStack>(std::vector<std::string>{
            "--tls-cert", cert->cert_file, "--tls-key", cert->key_file, "--ttft", "0ms"});
        std::string ca_file = ca_.ca_file();
        return stack_->start([&](GatewayConfig& c) {
            EXPECT_EQ(c.providers()[0].base_url.rfind("https://localhost:", 0), 0u);
            if (trust_ca) c.provider_option("sim", "ca_file", json_quote(ca_file));
        });
    }

    TestCa ca_;
    std::unique_ptr<GatewayStack> stack_;
};

TEST_F(TlsTest, VerifiedUpstreamWithPrivateCa) {
    ASSERT_TRUE(start("localhost"));
    auto response = stack_->gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->header("x-turnout-target"), "sim/sim-large");
    auto doc = parse_json(response->body);
    EXPECT_TRUE(json_string(doc, "choices/0/message/content")) << response->body;
}

TEST_F(TlsTest, StreamingOverTls) {
    ASSERT_TRUE(start("localhost"));
    RawConnection client(stack_->api_port());
    ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                    {{"Content-Type", "application/json"}},
                                    chat_body("smart", true)));
    SseStreamReader reader(client);
    auto head = reader.read_head(kWait);
    ASSERT_TRUE(head);
    ASSERT_EQ(head->status, 200);
    auto events = reader.read_all(kWait);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "[DONE]");
}

TEST_F(TlsTest, WrongHostnameIs502AndLogged) {
    ASSERT_TRUE(start("wrong.example"));
    auto response = stack_->gateway().chat(chat_body("smart"));
    EXPECT_TRUE(is_openai_error(response, 502, "upstream_unavailable", "upstream_error"));
    EXPECT_TRUE(stack_->gateway().wait_for_log(
        std::regex("tls|certificate", std::regex::icase | std::regex::ECMAScript)));
}

TEST_F(TlsTest, UntrustedCertificateIs502) {
    ASSERT_TRUE(start("localhost", /*trust_ca=*/false));
    auto response = stack_->gateway().chat(chat_body("smart"));
    EXPECT_TRUE(is_openai_error(response, 502, "upstream_unavailable"));
}

}  // namespace
}  // namespace turnout::test
