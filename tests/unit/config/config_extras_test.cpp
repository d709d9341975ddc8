// Config keys added for issue 3: per-target and per-provider `headers` and `body` (Anthropic's
// fast mode) and the provider's `max_tokens_default`.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/loader.hpp"

namespace turnout::config {
namespace {

std::string yaml(std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    return std::string(text);
}

config::LoadResult load(std::string_view text) {
    return config::load_config_string(yaml(text), "x.yaml", config::EnvPolicy::warn);
}

std::vector<std::string> errors_of(const config::LoadResult& result) {
    std::vector<std::string> texts;
    for (const auto& e : result.errors) texts.push_back(e.text);
    return texts;
}

std::shared_ptr<const config::Config> load_ok(std::string_view text) {
    const auto result = load(text);
    EXPECT_EQ(errors_of(result), std::vector<std::string>{});
    return result.config;
}

rapidjson::Document parse(const std::string& json) {
    rapidjson::Document doc;
    doc.Parse(json.c_str());
    EXPECT_FALSE(doc.HasParseError()) << json;
    EXPECT_TRUE(doc.IsObject()) << json;
    return doc;
}

TEST(FastMode, ProviderHeadersBodyAndMaxTokens) {
    const auto c = load_ok(R"(
providers:
  opus:
    kind: anthropic
    base_url: https://api.anthropic.com
    headers: {anthropic-beta: fast-mode-2026-02-01}
    body: {speed: fast}
    max_tokens_default: 8192
  plain: {base_url: http://h}
routes:
  - {name: r, primary: {provider: opus, model: m}}
)");
    ASSERT_NE(c, nullptr);
    const auto& opus = c->providers.at(0);
    EXPECT_EQ(opus.headers.at("anthropic-beta"), "fast-mode-2026-02-01");
    EXPECT_EQ(opus.extra_body_json, R"({"speed":"fast"})");
    EXPECT_EQ(opus.max_tokens_default, 8192u);
    const auto& plain = c->providers.at(1);
    EXPECT_EQ(plain.extra_body_json, "");
    EXPECT_EQ(plain.max_tokens_default, 4096u);
    EXPECT_TRUE(plain.headers.empty());
}

TEST(FastMode, EveryKindOfTargetCarriesHeadersAndBody) {
    const auto c = load_ok(R"(
providers:
  opus: {kind: anthropic, base_url: https://api.anthropic.com}
routes:
  - name: pc
    primary: {provider: opus, model: a, headers: {X-A: "1"}, body: {speed: fast}}
    candidate: {provider: opus, model: b, headers: {x-b: two}, body: {n: 2}}
    fallbacks: [{provider: opus, model: c, body: {f: true}, headers: {x-c: c}}]
  - name: split
    targets:
      - {provider: opus, model: d, weight: 3, body: {speed: fast}, headers: {x-d: d}}
      - {provider: opus, model: e}
)");
    ASSERT_NE(c, nullptr);
    const auto& pc = c->routes.at(0);
    EXPECT_EQ(pc.primary->headers, (std::map<std::string, std::string>{{"X-A", "1"}}));
    EXPECT_EQ(pc.primary->extra_body_json, R"({"speed":"fast"})");
    EXPECT_EQ(pc.candidate->headers, (std::map<std::string, std::string>{{"x-b", "two"}}));
    EXPECT_EQ(pc.candidate->extra_body_json, R"({"n":2})");
    EXPECT_EQ(pc.fallbacks.at(0).extra_body_json, R"({"f":true})");
    EXPECT_EQ(pc.fallbacks.at(0).headers.at("x-c"), "c");
    const auto& split = c->routes.at(1);
    EXPECT_EQ(split.targets.at(0).weight, 3u);
    EXPECT_EQ(split.targets.at(0).extra_body_json, R"({"speed":"fast"})");
    EXPECT_EQ(split.targets.at(0).headers.at("x-d"), "d");
    EXPECT_EQ(split.targets.at(1).extra_body_json, "");
    EXPECT_TRUE(split.targets.at(1).headers.empty());
}

TEST(FastMode, BodyValuesKeepTheirYamlTypes) {
    const auto c = load_ok(R"(
providers:
  p:
    base_url: http://h
    body:
      text: fast
      quoted_number: "100"
      quoted_bool: 'true'
      integer: 100
      negative: -3
      plus: +7
      float: 1.5
      exponent: 1e3
      yes: true
      no: False
      nothing: null
      tilde: ~
      empty:
      infinity: .inf
      hex: 0x10
      version: 1.2.3
      nested: {a: {b: [1, "two", {c: false}]}}
      list: [x, 2]
      messages_inside: {model: fine, stream: fine}
routes:
  - {name: r, primary: {provider: p, model: m}}
)");
    ASSERT_NE(c, nullptr);
    const auto doc = parse(c->providers.at(0).extra_body_json);
    EXPECT_STREQ(doc["text"].GetString(), "fast");
    EXPECT_STREQ(doc["quoted_number"].GetString(), "100");
    EXPECT_STREQ(doc["quoted_bool"].GetString(), "true");
    ASSERT_TRUE(doc["integer"].IsInt64());
    EXPECT_EQ(doc["integer"].GetInt64(), 100);
    EXPECT_EQ(doc["negative"].GetInt64(), -3);
    EXPECT_EQ(doc["plus"].GetInt64(), 7);
    ASSERT_TRUE(doc["float"].IsDouble());
    EXPECT_EQ(doc["float"].GetDouble(), 1.5);
    EXPECT_EQ(doc["exponent"].GetDouble(), 1000.0);
    EXPECT_TRUE(doc["yes"].IsTrue());
    EXPECT_TRUE(doc["no"].IsFalse());
    EXPECT_TRUE(doc["nothing"].IsNull());
    EXPECT_TRUE(doc["tilde"].IsNull());
    EXPECT_TRUE(doc["empty"].IsNull());
    EXPECT_STREQ(doc["infinity"].GetString(), ".inf");  // JSON has no infinity
    EXPECT_STREQ(doc["hex"].GetString(), "0x10");
    EXPECT_STREQ(doc["version"].GetString(), "1.2.3");
    const auto& list = doc["nested"]["a"]["b"];
    ASSERT_TRUE(list.IsArray());
    ASSERT_EQ(list.Size(), 3u);
    EXPECT_EQ(list[0].GetInt64(), 1);
    EXPECT_STREQ(list[1].GetString(), "two");
    EXPECT_TRUE(list[2]["c"].IsFalse());
    EXPECT_STREQ(doc["list"][0].GetString(), "x");
    EXPECT_STREQ(doc["messages_inside"]["model"].GetString(), "fine");
}

TEST(FastMode, FieldOrderIsKept) {
    const auto c = load_ok(R"(
providers:
  p: {base_url: http://h, body: {z: 1, a: 2, m: 3}}
routes:
  - {name: r, primary: {provider: p, model: m}}
)");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->providers.at(0).extra_body_json, R"({"z":1,"a":2,"m":3})");
}

TEST(FastMode, EmptyOrNullBodyMeansNoFields) {
    const auto c = load_ok(R"(
providers:
  p: {base_url: http://h, body: {}}
  q: {base_url: http://h, body: }
routes:
  - {name: r, primary: {provider: p, model: m, body: {}}}
)");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->providers.at(0).extra_body_json, "");
    EXPECT_EQ(c->providers.at(1).extra_body_json, "");
    EXPECT_EQ(c->routes.at(0).primary->extra_body_json, "");
}

TEST(FastModeErrors, BodyMustBeAMapWithoutGatewayFields) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h, body: [speed]}
  q: {base_url: http://h, body: fast}
routes:
  - name: r
    primary: {provider: p, model: m, body: {model: x, stream: true, messages: [], ok: 1}}
    fallbacks: [{provider: p, model: m, body: {speed: fast, speed: slow}}]
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "x.yaml:2:33: providers.p.body: expected a map of body fields, got a list",
                  "x.yaml:3:33: providers.q.body: expected a map of body fields, got 'fast'",
                  "x.yaml:6:45: routes[0].primary.body: 'model' is set by the gateway from the "
                  "client's request",
                  "x.yaml:6:55: routes[0].primary.body: 'stream' is set by the gateway from the "
                  "client's request",
                  "x.yaml:6:69: routes[0].primary.body: 'messages' is set by the gateway from "
                  "the client's request",
                  "x.yaml:7:61: routes[0].fallbacks[0].body: duplicate field 'speed'",
              }));
    EXPECT_EQ(result.config, nullptr);
}

TEST(FastModeErrors, NonScalarFieldNames) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h, body: {a: {[1, 2]: x}}}
routes:
  - {name: r, primary: {provider: p, model: m}}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "x.yaml:2:38: providers.p.body.a: expected a field name, got a list",
              }));
}

TEST(FastModeErrors, TargetHeadersAreCheckedLikeProviderHeaders) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h}
routes:
  - name: r
    primary: {provider: p, model: m, headers: {"bad name": x, x-a: [1]}}
    candidate: {provider: p, model: n, headers: [x]}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "x.yaml:5:48: routes[0].primary.headers: invalid header name 'bad name'",
                  "x.yaml:5:68: routes[0].primary.headers.x-a: expected a string, got a list",
                  "x.yaml:6:49: routes[0].candidate.headers: expected a map of headers, got a "
                  "list",
              }));
}

TEST(FastModeErrors, MaxTokensDefaultMustBePositive) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h, max_tokens_default: 0}
  q: {base_url: http://h, max_tokens_default: lots}
routes:
  - {name: r, primary: {provider: p, model: m}}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "x.yaml:2:47: providers.p.max_tokens_default: must be at least 1, got 0",
                  "x.yaml:3:47: providers.q.max_tokens_default: expected a non-negative integer, "
                  "got 'lots'",
              }));
}

TEST(FastModeErrors, UnknownKeysInTargetsStillRejected) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h}
routes:
  - {name: r, primary: {provider: p, model: m, bodies: {}}}
)");
    EXPECT_EQ(errors_of(result), (std::vector<std::string>{
                                     "x.yaml:4:48: routes[0].primary: unknown key 'bodies'",
                                 }));
}

TEST(Hardening, CircuitBreakerAndHighWaterMark) {
    const auto c = load_ok(R"(
limits: {max_connections: 100, max_inflight: 40}
providers:
  a: {base_url: http://127.0.0.1:1/v1, circuit_breaker: {failures: 3, cooldown: 2s}}
  b: {base_url: http://127.0.0.1:2/v1, circuit_breaker: {failures: 0}}
  c: {base_url: http://127.0.0.1:3/v1}
routes:
  - name: r
    primary: {provider: a, model: m}
)");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->limits.max_inflight, 40u);
    EXPECT_EQ(c->providers.at(0).circuit_breaker.failures, 3u);
    EXPECT_EQ(c->providers.at(0).circuit_breaker.cooldown, std::chrono::seconds(2));
    EXPECT_EQ(c->providers.at(1).circuit_breaker.failures, 0u);
    EXPECT_EQ(c->providers.at(2).circuit_breaker.failures, 5u);  // the default
    EXPECT_EQ(c->providers.at(2).circuit_breaker.cooldown, std::chrono::seconds(30));
    EXPECT_EQ(load_ok(R"(
providers: {a: {base_url: http://127.0.0.1:1/v1}}
routes: [{name: r, primary: {provider: a, model: m}}]
)")
                  ->limits.max_inflight,
              0u);
}

TEST(Hardening, CircuitBreakerKeysAreChecked) {
    const auto result = load(R"(
providers:
  a: {base_url: http://127.0.0.1:1/v1, circuit_breaker: {failures: -1, cooldown: 0s, open: 1}}
routes:
  - name: r
    primary: {provider: a, model: m}
)");
    EXPECT_EQ(result.config, nullptr);
    const auto errors = errors_of(result);
    ASSERT_EQ(errors.size(), 3u) << ::testing::PrintToString(errors);
    for (const auto& e : errors) EXPECT_EQ(e.rfind("x.yaml:2:", 0), 0u) << e;
    EXPECT_NE(errors[0].find("circuit_breaker"), std::string::npos) << errors[0];
}

TEST(Hardening, CaFileThatIsAFifoOrDeviceIsRefusedWithoutBlocking) {
    const std::string fifo =
        std::filesystem::temp_directory_path() / ("turnout-ca-fifo-" + std::to_string(::getpid()));
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    for (const std::string& path : {fifo, std::string("/dev/zero")}) {
        const auto result =
            load("providers:\n  a: {base_url: https://127.0.0.1:1/v1, ca_file: " + path +
                 "}\nroutes: [{name: r, primary: {provider: a, model: m}}]\n");
        const auto errors = errors_of(result);
        ASSERT_EQ(errors.size(), 1u) << path;
        EXPECT_NE(errors[0].find("not a regular file"), std::string::npos) << errors[0];
    }
    std::filesystem::remove(fifo);
}

}  // namespace
}  // namespace turnout::config
