// TLS to the upstream: a private CA through `ca_file`, hostname verification (names from the
// subjectAltName only, no partial wildcards), untrusted certificates.

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

/// A server certificate signed by `ca` with subject CN `common_name` and, when `san` is not
/// empty, `subjectAltName = SAN` (TestCa::issue always adds a SAN: these need other shapes).
std::optional<TestCa::Cert> issue_custom(const TestCa& ca, const std::string& base,
                                         const std::string& common_name, const std::string& san,
                                         std::string* error) {
    std::ofstream(ca.dir() + "/" + base + ".ext")
        << "basicConstraints = critical, CA:FALSE\n"
           "keyUsage = critical, digitalSignature, keyEncipherment\n"
           "extendedKeyUsage = serverAuth\n"
        << (san.empty() ? "" : "subjectAltName = " + san + "\n");
    auto openssl = [&](std::vector<std::string> args) {
        ProcessOptions p;
        p.argv = {find_program("openssl")};
        p.argv.insert(p.argv.end(), args.begin(), args.end());
        p.cwd = ca.dir();
        p.env = {{"OPENSSL_CONF", ca.dir() + "/openssl.cnf"}};
        return run_command(p, Millis(60000));
    };
    auto r = openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj",
                      "/CN=" + common_name, "-config", "openssl.cnf"});
    if (r.exit_code == 0) {
        r = openssl({"x509", "-req", "-in", base + ".csr", "-CA", ca.ca_file(), "-CAkey",
                     ca.dir() + "/ca.key", "-set_serial", "77", "-days", "2", "-out", base + ".pem",
                     "-extfile", base + ".ext"});
    }
    if (r.exit_code != 0) {
        if (error) *error = r.output;
        return std::nullopt;
    }
    return TestCa::Cert{ca.dir() + "/" + base + ".pem", ca.dir() + "/" + base + ".key"};
}

// A host name with dots that resolves to 127.0.0.1 without /etc/hosts: getaddrinfo reads it
// as an IPv4 number (inet_aton's three-part form), while neither inet_pton nor OpenSSL's
// SSL_set1_host (four parts) takes it for an IP address, so it is checked as a DNS name.
// Wildcard certificates need a name of three labels or more.
constexpr const char* kDottedLoopbackName = "127.0.1";

class TlsTest : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(ca_.create()); }

    /// Like start(), with a given certificate, and the provider's base_url naming `host`
    /// instead of localhost.
    ::testing::AssertionResult start_with(const TestCa::Cert& cert, const std::string& host) {
        stack_ = std::make_unique<GatewayStack>(std::vector<std::string>{
            "--tls-cert", cert.cert_file, "--tls-key", cert.key_file, "--ttft", "0ms"});
        std::string ca_file = ca_.ca_file();
        return stack_->start([&](GatewayConfig& c) {
            std::string& url = c.providers()[0].base_url;
            const std::string localhost = "https://localhost:";
            EXPECT_EQ(url.rfind(localhost, 0), 0u);
            url = "https://" + host + ":" + url.substr(localhost.size());
            c.provider_option("sim", "ca_file", json_quote(ca_file));
        });
    }

    /// The request is refused as the name check fails: 502, and the reason logged.
    void expect_name_refused() {
        auto response = stack_->gateway().chat(chat_body("smart"));
        EXPECT_TRUE(is_openai_error(response, 502, "upstream_unavailable", "upstream_error"));
        EXPECT_TRUE(stack_->gateway().wait_for_log(std::regex("hostname mismatch")));
    }

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

TEST_F(TlsTest, CertificateWithoutSanIsRefusedDespiteMatchingCn) {
    // No fallback to the subject CN (RFC 9525): only a subjectAltName names a server.
    std::string error;
    auto cert = issue_custom(ca_, "cn-only", "localhost", "", &error);
    ASSERT_TRUE(cert) << error;
    ASSERT_TRUE(start_with(*cert, "localhost"));
    expect_name_refused();
}

TEST_F(TlsTest, PartialWildcardIsRefused) {
    // `1*.0.1` would match 127.0.1 as a partial wildcard (`f*.example.com`).
    std::string error;
    auto cert = issue_custom(ca_, "partial", "partial wildcard", "DNS:1*.0.1", &error);
    ASSERT_TRUE(cert) << error;
    ASSERT_TRUE(start_with(*cert, kDottedLoopbackName));
    expect_name_refused();
}

TEST_F(TlsTest, WholeLabelWildcardSanIsAccepted) {
    // The control for the test above: same name, same resolution, a whole-label wildcard.
    std::string error;
    auto cert = issue_custom(ca_, "wildcard", "wildcard", "DNS:*.0.1", &error);
    ASSERT_TRUE(cert) << error;
    ASSERT_TRUE(start_with(*cert, kDottedLoopbackName));
    auto response = stack_->gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body << stack_->gateway().log_text();
}

}  // namespace
}  // namespace turnout::test
