// The YAML loader against the contract's example, its defaults, and every class of error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.hpp"

namespace turnout::config {
namespace {

using namespace std::chrono_literals;

// Raw strings start on the line after `R"(`; dropping that first newline makes line 1 of
// the YAML the first line of text, so the expected line numbers read off the source.
std::string yaml(std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    return std::string(text);
}

config::LoadResult load(std::string_view text, config::EnvPolicy policy = config::EnvPolicy::warn) {
    return config::load_config_string(yaml(text), "bad.yaml", policy);
}

std::vector<std::string> errors_of(const config::LoadResult& result) {
    std::vector<std::string> texts;
    for (const auto& e : result.errors) texts.push_back(e.text);
    return texts;
}

/// Expects exactly one error, with this exact text, and no config.
void expect_error(std::string_view text, const std::string& expected) {
    const auto result = load(text);
    EXPECT_EQ(errors_of(result), std::vector<std::string>{expected});
    EXPECT_EQ(result.config, nullptr);
}

/// Loads a config that must be valid.
std::shared_ptr<const config::Config> load_ok(std::string_view text,
                                              config::EnvPolicy policy = config::EnvPolicy::warn) {
    const auto result = load(text, policy);
    EXPECT_EQ(errors_of(result), std::vector<std::string>{});
    return result.config;
}

/// Sets an environment variable for one test and restores the old value afterwards.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_.c_str(), old_->c_str(), 1);
        } else {
            ::unsetenv(name_.c_str());
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    std::string name_;
    std::optional<std::string> old_;
};

constexpr const char* kContractExample =
    R"(listen: 0.0.0.0:8080                 # the OpenAI-compatible endpoint
admin:
  listen: 127.0.0.1:9090             # /metrics, /healthz, /readyz, /admin/*
  token_env: TURNOUT_ADMIN_TOKEN     # bearer token for /admin/* (not for /metrics, /healthz)
state:
  path: ./turnout-state              # embedded default: route states + verdict log on local disk
  # url: redis://127.0.0.1:6379/0    # shared state for several replicas
limits:
  max_body_bytes: 4MiB               # larger request bodies: 413 (also for chunked bodies)
  max_header_bytes: 64KiB            # larger header blocks: 431
  client_timeout: 30s                # a complete request (headers + body) must arrive within this: else 408 + close
  keepalive_timeout: 60s             # idle time between requests on a kept-alive connection
  max_connections: 10000             # client connections; beyond it new ones wait in the accept queue
log: {level: info, format: json}     # json | text
keys:                                # optional; absent = no client auth
  - {name: team-a, key_env: TEAM_A_KEY}
providers:
  opus:
    kind: anthropic                  # anthropic | openai (any OpenAI-compatible server)
    base_url: https://api.anthropic.com
    api_key_env: ANTHROPIC_API_KEY
    timeout: 120s
    max_connections: 64
    headers: {}                      # extra upstream headers
    price: {input_per_mtok: 15.0, output_per_mtok: 75.0}
  spark:
    kind: openai
    base_url: https://api.cerebras.ai/v1
    api_key_env: CEREBRAS_API_KEY
routes:                              # first match wins
  - name: coding
    match:
      model: smart                   # exact name or glob (`claude-*`); absent = any
      headers: {x-team: a}           # all must match; values may be globs
      keys: [team-a]                 # client key names; absent = any
    primary:   {provider: opus,  model: claude-opus-4-6}
    candidate: {provider: spark, model: gpt-5.3-codex-spark}
    fallbacks: [{provider: spark, model: gpt-5.3-codex-spark}]   # tried in order on connection failure, 5xx, 429, timeout before the first byte
    retries: {attempts: 2, backoff: 100ms}
    timeout: 60s
    shadow:
      sample_rate: 0.1               # share of live requests mirrored to the other side
      max_inflight: 8
      queue: 256                     # full queue = drop the sample, never block live traffic
    judge:
      provider: opus
      model: claude-opus-4-6
      prompt_file: ""                # empty = the built-in Distillation QA template
      pass_score: 95                 # a pair passes when score >= pass_score
    promotion:
      mode: auto                     # shadow (judge only) | auto | pin-primary | pin-candidate
      window: 100                    # verdicts kept for the rolling pass rate
      min_samples: 50
      threshold: 0.90                # flip when the pass rate stays above this
      hold: 10m                      # ... continuously for this long
      rollback_threshold: 0.85       # after a flip, roll back when quality falls below this
      confidence: 0.95               # of the sequential test below
      ramp: [100]                    # share of live traffic on the candidate at each step, e.g. [10, 50, 100]
      step: 30m                      # time (and >= min_samples verdicts) on each ramp step
      cooldown: 1h                   # after a rollback, before a new flip may happen
      shadow_after_promotion: 0.05   # share of live traffic still judged against the primary once promoted
  - name: default
    primary: {provider: opus, model: claude-opus-4-6}
)";

// ---------------------------------------------------------------------------------------------
// The contract's example

class ContractExample : public ::testing::Test {
  protected:
    ScopedEnv admin_{"TURNOUT_ADMIN_TOKEN", "admin-secret"};
    ScopedEnv team_a_{"TEAM_A_KEY", "team-a-secret"};
    ScopedEnv anthropic_{"ANTHROPIC_API_KEY", "sk-ant-secret"};
    ScopedEnv cerebras_{"CEREBRAS_API_KEY", "csk-secret"};
};

TEST_F(ContractExample, LoadsUnderTheStrictPolicy) {
    const auto result =
        config::load_config_string(kContractExample, "turnout.yaml", config::EnvPolicy::require);
    ASSERT_EQ(errors_of(result), std::vector<std::string>{});
    EXPECT_TRUE(result.warnings.empty());
    ASSERT_NE(result.config, nullptr);
    EXPECT_EQ(result.config->source_path, "turnout.yaml");
}

TEST_F(ContractExample, TopLevelSections) {
    const auto c =
        config::load_config_string(kContractExample, "t.yaml", config::EnvPolicy::require).config;
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->listen, "0.0.0.0:8080");
    EXPECT_EQ(c->admin.listen, "127.0.0.1:9090");
    EXPECT_EQ(c->admin.token_env, "TURNOUT_ADMIN_TOKEN");
    EXPECT_EQ(c->state.path, "./turnout-state");
    EXPECT_EQ(c->state.url, "");
    EXPECT_EQ(c->limits.max_body_bytes, 4u << 20);
    EXPECT_EQ(c->limits.max_header_bytes, 64u << 10);
    EXPECT_EQ(c->limits.client_timeout, 30s);
    EXPECT_EQ(c->limits.keepalive_timeout, 60s);
    EXPECT_EQ(c->limits.max_connections, 10000u);
    EXPECT_EQ(c->log.level, "info");
    EXPECT_EQ(c->log.format, "json");
    ASSERT_EQ(c->keys.size(), 1u);
    EXPECT_EQ(c->keys[0].name, "team-a");
    EXPECT_EQ(c->keys[0].key_env, "TEAM_A_KEY");
}

TEST_F(ContractExample, Providers) {
    const auto c =
        config::load_config_string(kContractExample, "t.yaml", config::EnvPolicy::require).config;
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->providers.size(), 2u);
    const auto* opus = c->find_provider("opus");
    ASSERT_EQ(opus, &c->providers[0]);
    EXPECT_EQ(opus->kind, config::ProviderKind::anthropic);
    EXPECT_EQ(opus->base_url, "https://api.anthropic.com");
    EXPECT_TRUE(opus->address.tls);
    EXPECT_EQ(opus->address.host, "api.anthropic.com");
    EXPECT_EQ(opus->address.port, 443);
    EXPECT_EQ(opus->address.base_path, "");
    EXPECT_EQ(opus->api_key_env, "ANTHROPIC_API_KEY");
    EXPECT_EQ(opus->timeout, 120s);
    EXPECT_EQ(opus->max_connections, 64u);
    EXPECT_TRUE(opus->headers.empty());
    EXPECT_EQ(opus->price.input_per_mtok, 15.0);
    EXPECT_EQ(opus->price.output_per_mtok, 75.0);
    const auto* spark = c->find_provider("spark");
    ASSERT_EQ(spark, &c->providers[1]);
    EXPECT_EQ(spark->kind, config::ProviderKind::openai);
    EXPECT_EQ(spark->address.host, "api.cerebras.ai");
    EXPECT_EQ(spark->address.base_path, "/v1");
    EXPECT_EQ(spark->api_key_env, "CEREBRAS_API_KEY");
    EXPECT_EQ(c->find_provider("nope"), nullptr);
}

TEST_F(ContractExample, NeverStoresSecrets) {
    const auto result =
        config::load_config_string(kContractExample, "t.yaml", config::EnvPolicy::require);
    ASSERT_NE(result.config, nullptr);
    for (const auto& p : result.config->providers) {
        for (const auto& [name, value] : p.headers)
            EXPECT_EQ(value.find("secret"), std::string::npos);
        EXPECT_EQ(p.api_key_env.find("secret"), std::string::npos);
    }
}

TEST_F(ContractExample, CodingRoute) {
    const auto c =
        config::load_config_string(kContractExample, "t.yaml", config::EnvPolicy::require).config;
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->routes.size(), 2u);
    const auto& r = c->routes[0];
    EXPECT_EQ(r.name, "coding");
    EXPECT_EQ(r.match.model, "smart");
    EXPECT_EQ(r.match.headers, (std::map<std::string, std::string>{{"x-team", "a"}}));
    EXPECT_EQ(r.match.keys, std::vector<std::string>{"team-a"});
    ASSERT_TRUE(r.primary);
    EXPECT_EQ(r.primary->provider, "opus");
    EXPECT_EQ(r.primary->model, "claude-opus-4-6");
    ASSERT_TRUE(r.candidate);
    EXPECT_EQ(r.candidate->provider, "spark");
    EXPECT_EQ(r.candidate->model, "gpt-5.3-codex-spark");
    EXPECT_TRUE(r.targets.empty());
    ASSERT_EQ(r.fallbacks.size(), 1u);
    EXPECT_EQ(r.fallbacks[0].provider, "spark");
    EXPECT_EQ(r.fallbacks[0].model, "gpt-5.3-codex-spark");
    EXPECT_EQ(r.retries.attempts, 2u);
    EXPECT_EQ(r.retries.backoff, 100ms);
    EXPECT_EQ(r.timeout, 60s);
    EXPECT_EQ(r.shadow.sample_rate, 0.1);
    EXPECT_EQ(r.shadow.max_inflight, 8u);
    EXPECT_EQ(r.shadow.queue, 256u);
    EXPECT_EQ(r.judge.provider, "opus");
    EXPECT_EQ(r.judge.model, "claude-opus-4-6");
    EXPECT_EQ(r.judge.prompt_file, "");
    EXPECT_EQ(r.judge.pass_score, 95);
}

TEST_F(ContractExample, Promotion) {
    const auto c =
        config::load_config_string(kContractExample, "t.yaml", config::EnvPolicy::require).config;
    ASSERT_NE(c, nullptr);
    const auto& p = c->routes[0].promotion;
    EXPECT_EQ(p.mode, config::PromotionMode::automatic);
    EXPECT_EQ(p.window, 100u);
    EXPECT_EQ(p.min_samples, 50u);
    EXPECT_EQ(p.threshold, 0.90);
    EXPECT_EQ(p.hold, 10min);
    EXPECT_EQ(p.rollback_threshold, 0.85);
    EXPECT_EQ(p.confidence, 0.95);
    EXPECT_EQ(p.ramp, std::vector<std::uint32_t>{100});
    EXPECT_EQ(p.step, 30min);
    EXPECT_EQ(p.cooldown, 1h);
    EXPECT_EQ(p.shadow_after_promotion, 0.05);
}

TEST_F(ContractExample, DefaultRoute) {
    const auto c =
        config::load_config_string(kContractExample, "t.yaml", config::EnvPolicy::require).config;
    ASSERT_NE(c, nullptr);
    const auto& r = c->routes[1];
    EXPECT_EQ(r.name, "default");
    EXPECT_EQ(r.match.model, "");
    ASSERT_TRUE(r.primary);
    EXPECT_EQ(r.primary->provider, "opus");
    EXPECT_FALSE(r.candidate);
    EXPECT_EQ(r.judge.provider, "");
}

TEST(ContractExampleEnv, UnsetVariablesAreWarningsWhenChecking) {
    ScopedEnv a{"TURNOUT_ADMIN_TOKEN", nullptr};
    ScopedEnv b{"TEAM_A_KEY", "x"};
    ScopedEnv c{"ANTHROPIC_API_KEY", nullptr};
    ScopedEnv d{"CEREBRAS_API_KEY", ""};
    const auto result =
        config::load_config_string(kContractExample, "t.yaml", config::EnvPolicy::warn);
    EXPECT_EQ(errors_of(result), std::vector<std::string>{});
    EXPECT_NE(result.config, nullptr);
    EXPECT_EQ(result.warnings,
              (std::vector<std::string>{
                  "t.yaml:4:14: admin.token_env: environment variable 'TURNOUT_ADMIN_TOKEN' is "
                  "not set",
                  "t.yaml:21:18: providers.opus.api_key_env: environment variable "
                  "'ANTHROPIC_API_KEY' is not set",
                  "t.yaml:29:18: providers.spark.api_key_env: environment variable "
                  "'CEREBRAS_API_KEY' is empty",
              }));
}

TEST(ContractExampleEnv, UnsetVariablesAreErrorsWhenServing) {
    ScopedEnv a{"TURNOUT_ADMIN_TOKEN", "x"};
    ScopedEnv b{"TEAM_A_KEY", nullptr};
    ScopedEnv c{"ANTHROPIC_API_KEY", "x"};
    ScopedEnv d{"CEREBRAS_API_KEY", "x"};
    const auto result =
        config::load_config_string(kContractExample, "t.yaml", config::EnvPolicy::require);
    EXPECT_EQ(errors_of(result),
              std::vector<std::string>{
                  "t.yaml:16:29: keys[0].key_env: environment variable 'TEAM_A_KEY' is not set"});
    EXPECT_TRUE(result.warnings.empty());
    EXPECT_EQ(result.config, nullptr);
}

// ---------------------------------------------------------------------------------------------
// Defaults and the smaller valid shapes

TEST(Defaults, MinimalConfigKeepsEveryMemberInitialiser) {
    const auto c = load_ok(R"(
providers:
  p: {base_url: http://127.0.0.1:9000/v1}
routes:
  - name: r
    primary: {provider: p, model: m}
)");
    ASSERT_NE(c, nullptr);
    const config::Config d;
    EXPECT_EQ(c->listen, d.listen);
    EXPECT_EQ(c->admin.listen, d.admin.listen);
    EXPECT_EQ(c->admin.token_env, "");
    EXPECT_EQ(c->state.path, d.state.path);
    EXPECT_EQ(c->limits.max_body_bytes, d.limits.max_body_bytes);
    EXPECT_EQ(c->limits.max_header_bytes, d.limits.max_header_bytes);
    EXPECT_EQ(c->limits.client_timeout, d.limits.client_timeout);
    EXPECT_EQ(c->limits.keepalive_timeout, d.limits.keepalive_timeout);
    EXPECT_EQ(c->limits.max_connections, d.limits.max_connections);
    EXPECT_EQ(c->limits.drain_timeout, 10s);
    EXPECT_EQ(c->log.level, "info");
    EXPECT_EQ(c->log.format, "json");
    EXPECT_TRUE(c->keys.empty());

    const config::ProviderConfig dp;
    const auto& p = c->providers.at(0);
    EXPECT_EQ(p.name, "p");
    EXPECT_EQ(p.kind, config::ProviderKind::openai);
    EXPECT_EQ(p.api_key_env, "");
    EXPECT_EQ(p.timeout, dp.timeout);
    EXPECT_EQ(p.connect_timeout, dp.connect_timeout);
    EXPECT_EQ(p.first_byte_timeout, dp.first_byte_timeout);
    EXPECT_EQ(p.stream_idle_timeout, dp.stream_idle_timeout);
    EXPECT_EQ(p.max_connections, dp.max_connections);
    EXPECT_EQ(p.ca_file, "");
    EXPECT_TRUE(p.tls_verify);
    EXPECT_EQ(p.price.input_per_mtok, 0.0);

    const config::RouteConfig dr;
    const auto& r = c->routes.at(0);
    EXPECT_EQ(r.retries.attempts, dr.retries.attempts);
    EXPECT_EQ(r.retries.backoff, dr.retries.backoff);
    EXPECT_EQ(r.timeout, dr.timeout);
    EXPECT_EQ(r.shadow.sample_rate, dr.shadow.sample_rate);
    EXPECT_EQ(r.shadow.max_inflight, dr.shadow.max_inflight);
    EXPECT_EQ(r.shadow.queue, dr.shadow.queue);
    EXPECT_EQ(r.judge.pass_score, dr.judge.pass_score);
    EXPECT_EQ(r.promotion.mode, config::PromotionMode::shadow);
    EXPECT_EQ(r.promotion.window, dr.promotion.window);
    EXPECT_EQ(r.promotion.min_samples, dr.promotion.min_samples);
    EXPECT_EQ(r.promotion.threshold, dr.promotion.threshold);
    EXPECT_EQ(r.promotion.hold, dr.promotion.hold);
    EXPECT_EQ(r.promotion.rollback_threshold, dr.promotion.rollback_threshold);
    EXPECT_EQ(r.promotion.confidence, dr.promotion.confidence);
    EXPECT_EQ(r.promotion.ramp, dr.promotion.ramp);
    EXPECT_EQ(r.promotion.step, dr.promotion.step);
    EXPECT_EQ(r.promotion.cooldown, dr.promotion.cooldown);
    EXPECT_EQ(r.promotion.shadow_after_promotion, dr.promotion.shadow_after_promotion);
}

TEST(Extensions, ProviderTimeoutsTlsAndDrain) {
    const auto ca = std::filesystem::temp_directory_path() /
                    ("turnout_config_test_ca_" + std::to_string(::getpid()) + ".pem");
    std::ofstream(ca) << "-----BEGIN CERTIFICATE-----\n";
    std::string text = yaml(R"(
limits: {drain_timeout: 0s}
providers:
  p:
    base_url: https://10.0.0.1:8443/v1/
    connect_timeout: 250ms
    first_byte_timeout: 5s
    stream_idle_timeout: 2m
    ca_file: CA_FILE
    tls_verify: false
    headers: {anthropic-version: "2023-06-01", X-Custom: 7}
routes:
  - name: r
    primary: {provider: p, model: m}
)");
    text.replace(text.find("CA_FILE"), 7, ca.string());
    const auto c = load_ok(text);
    std::filesystem::remove(ca);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->limits.drain_timeout, 0ms);
    const auto& p = c->providers.at(0);
    EXPECT_EQ(p.address.host, "10.0.0.1");
    EXPECT_EQ(p.address.port, 8443);
    EXPECT_EQ(p.address.base_path, "/v1");
    EXPECT_EQ(p.connect_timeout, 250ms);
    EXPECT_EQ(p.first_byte_timeout, 5s);
    EXPECT_EQ(p.stream_idle_timeout, 2min);
    EXPECT_EQ(p.ca_file, ca.string());
    EXPECT_FALSE(p.tls_verify);
    EXPECT_EQ(p.headers, (std::map<std::string, std::string>{{"anthropic-version", "2023-06-01"},
                                                             {"X-Custom", "7"}}));
}

TEST(Targets, WeightedSplit) {
    const auto c = load_ok(R"(
providers:
  opus: {kind: anthropic, base_url: https://api.anthropic.com}
  spark: {base_url: https://api.cerebras.ai/v1}
routes:
  - name: split
    targets: [{provider: opus, model: m, weight: 90}, {provider: spark, model: n, weight: 10}]
  - name: unweighted
    targets: [{provider: opus, model: m}]
)");
    ASSERT_NE(c, nullptr);
    const auto& t = c->routes.at(0).targets;
    ASSERT_EQ(t.size(), 2u);
    EXPECT_EQ(t[0].provider, "opus");
    EXPECT_EQ(t[0].model, "m");
    EXPECT_EQ(t[0].weight, 90u);
    EXPECT_EQ(t[1].provider, "spark");
    EXPECT_EQ(t[1].weight, 10u);
    EXPECT_FALSE(c->routes[0].primary);
    EXPECT_EQ(c->routes.at(1).targets.at(0).weight, 1u);
}

TEST(Values, EveryModeAndEnum) {
    const auto c = load_ok(R"(
log: {level: trace, format: text}
providers:
  p: {kind: openai, base_url: http://h}
routes:
  - {name: a, primary: {provider: p, model: m}, promotion: {mode: shadow}}
  - {name: b, primary: {provider: p, model: m}, promotion: {mode: auto}}
  - {name: c, primary: {provider: p, model: m}, promotion: {mode: pin-primary}}
  - {name: d, primary: {provider: p, model: m}, promotion: {mode: pin-candidate}}
)");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->log.level, "trace");
    EXPECT_EQ(c->log.format, "text");
    EXPECT_EQ(c->routes[0].promotion.mode, config::PromotionMode::shadow);
    EXPECT_EQ(c->routes[1].promotion.mode, config::PromotionMode::automatic);
    EXPECT_EQ(c->routes[2].promotion.mode, config::PromotionMode::pin_primary);
    EXPECT_EQ(c->routes[3].promotion.mode, config::PromotionMode::pin_candidate);
}

TEST(Values, SizesDurationsAndNumbersInTheFile) {
    const auto c = load_ok(R"(
listen: "[::1]:0"
admin: {listen: "localhost:65535"}
limits:
  max_body_bytes: 1048576
  max_header_bytes: 512B
  client_timeout: 1500ms
  keepalive_timeout: 0s
  max_connections: 1
providers:
  p: {base_url: http://h, price: {input_per_mtok: 0, output_per_mtok: 1e1}}
routes:
  - name: r
    primary: {provider: p, model: m}
    shadow: {sample_rate: 1, max_inflight: 1, queue: 0}
    judge: {provider: p, model: j, pass_score: 100}
    promotion:
      window: 10
      min_samples: 10
      threshold: 1
      rollback_threshold: 0
      confidence: 0.999
      ramp: [1, 50, 100]
      hold: 0s
      shadow_after_promotion: 0
)");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->listen, "[::1]:0");
    EXPECT_EQ(c->limits.max_body_bytes, 1048576u);
    EXPECT_EQ(c->limits.max_header_bytes, 512u);
    EXPECT_EQ(c->limits.client_timeout, 1500ms);
    EXPECT_EQ(c->limits.keepalive_timeout, 0ms);
    EXPECT_EQ(c->limits.max_connections, 1u);
    EXPECT_EQ(c->providers[0].price.output_per_mtok, 10.0);
    const auto& r = c->routes[0];
    EXPECT_EQ(r.shadow.sample_rate, 1.0);
    EXPECT_EQ(r.shadow.queue, 0u);
    EXPECT_EQ(r.judge.pass_score, 100.0);
    EXPECT_EQ(r.promotion.min_samples, 10u);
    EXPECT_EQ(r.promotion.ramp, (std::vector<std::uint32_t>{1, 50, 100}));
    EXPECT_EQ(r.promotion.hold, 0ms);
}

TEST(Values, MatchHeaderNamesAreLowerCased) {
    const auto c = load_ok(R"(
keys:
  - {name: team-a, key_env: TURNOUT_TEST_UNSET_1}
  - {name: team-b, key_env: TURNOUT_TEST_UNSET_2}
providers:
  p: {base_url: http://h}
routes:
  - name: r
    match: {model: "claude-*", headers: {X-Team: "a*", Accept: b}, keys: [team-b, team-a]}
    primary: {provider: p, model: m}
)");
    ASSERT_NE(c, nullptr);
    const auto& m = c->routes[0].match;
    EXPECT_EQ(m.model, "claude-*");
    EXPECT_EQ(m.headers, (std::map<std::string, std::string>{{"x-team", "a*"}, {"accept", "b"}}));
    EXPECT_EQ(m.keys, (std::vector<std::string>{"team-b", "team-a"}));
}

TEST(Values, EmptySectionsAreAllowed) {
    const auto c = load_ok(R"(
admin:
keys:
providers:
  p: {base_url: http://h, headers: }
routes:
  - name: r
    match:
    primary: {provider: p, model: m}
    fallbacks: []
)");
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(c->keys.empty());
    EXPECT_TRUE(c->routes[0].fallbacks.empty());
}

// ---------------------------------------------------------------------------------------------
// Errors: every message is FILE:LINE:COL: path: message, at the offending node

TEST(Errors, UnknownTopLevelKey) {
    expect_error(R"(
providers:
  p: {base_url: http://h}
routes:
  - {name: r, primary: {provider: p, model: m}}
foo: 1
)",
                 "bad.yaml:5:1: unknown key 'foo'");
}

TEST(Errors, UnknownNestedKeys) {
    const auto result = load(R"(
admin: {listen: "127.0.0.1:9090", tokenenv: X}
providers:
  p: {base_url: http://h, api_key: sk-x}
routes:
  - name: r
    match:
      modle: smart
    primary: {provider: p, model: m}
    promotion: {mode: auto, windw: 10}
)");
    EXPECT_EQ(errors_of(result), (std::vector<std::string>{
                                     "bad.yaml:1:35: admin: unknown key 'tokenenv'",
                                     "bad.yaml:3:27: providers.p: unknown key 'api_key'",
                                     "bad.yaml:7:7: routes[0].match: unknown key 'modle'",
                                     "bad.yaml:9:29: routes[0].promotion: unknown key 'windw'",
                                 }));
}

TEST(Errors, UnknownProviderPointsAtTheValueThatNamesIt) {
    expect_error(R"(
providers:
  openai:
    base_url: https://api.openai.com/v1
routes:
  - name: coding
    match: {model: smart}
    primary:
      provider: opneai
      model: gpt-4o
)",
                 "bad.yaml:8:17: routes[0].primary.provider: unknown provider 'opneai'");
}

TEST(Errors, EveryCrossReferenceIsChecked) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h}
routes:
  - name: r
    primary: {provider: p, model: m}
    candidate: {provider: c, model: m}
    fallbacks: [{provider: p, model: m}, {provider: f, model: m}]
    judge: {provider: j, model: m}
  - name: s
    targets: [{provider: t, model: m}]
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:6:27: routes[0].candidate.provider: unknown provider 'c'",
                  "bad.yaml:7:53: routes[0].fallbacks[1].provider: unknown provider 'f'",
                  "bad.yaml:8:23: routes[0].judge.provider: unknown provider 'j'",
                  "bad.yaml:10:26: routes[1].targets[0].provider: unknown provider 't'",
              }));
}

TEST(Errors, MapWhereScalarExpected) {
    expect_error(R"(
listen: {host: 0.0.0.0}
providers:
  p: {base_url: http://h}
routes:
  - {name: r, primary: {provider: p, model: m}}
)",
                 "bad.yaml:1:9: listen: expected a string, got a map");
}

TEST(Errors, WrongScalarTypes) {
    const auto result = load(R"(
limits: {max_connections: abc}
providers:
  p: {base_url: http://h, tls_verify: yes, max_connections: -1}
routes:
  - name: [r]
    primary: {provider: p, model: m}
    retries: {attempts: 1.5}
    shadow: {sample_rate: high, queue: 99999999999}
    promotion: {ramp: 100}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:1:27: limits.max_connections: expected a non-negative integer, got "
                  "'abc'",
                  "bad.yaml:3:39: providers.p.tls_verify: expected true or false, got 'yes'",
                  "bad.yaml:3:61: providers.p.max_connections: expected a non-negative "
                  "integer, got '-1'",
                  "bad.yaml:5:11: routes[0].name: expected a string, got a list",
                  "bad.yaml:7:25: routes[0].retries.attempts: expected a non-negative integer, "
                  "got '1.5'",
                  "bad.yaml:8:27: routes[0].shadow.sample_rate: expected a number, got 'high'",
                  "bad.yaml:8:40: routes[0].shadow.queue: must be at most 4294967295, got "
                  "99999999999",
                  "bad.yaml:9:23: routes[0].promotion.ramp: expected a list, got '100'",
              }));
}

TEST(Errors, SectionOfTheWrongShape) {
    const auto result = load(R"(
admin: 127.0.0.1:9090
keys: {name: a}
providers: [p]
routes: {name: r}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:1:8: admin: expected a map, got '127.0.0.1:9090'",
                  "bad.yaml:2:7: keys: expected a list, got a map",
                  "bad.yaml:3:12: providers: expected a map of providers, got a list",
                  "bad.yaml:4:9: routes: expected a list, got a map",
              }));
}

TEST(Errors, BadDurations) {
    const auto result = load(R"(
limits: {client_timeout: 30, keepalive_timeout: 1.5s, drain_timeout: 10 s}
providers:
  p: {base_url: http://h, timeout: 0s, connect_timeout: 1d}
routes:
  - name: r
    primary: {provider: p, model: m}
    timeout: 30S
    promotion: {hold: -1m, cooldown: 1h30m}
)");
    const std::string expected = ": expected an integer with ms, s, m or h (e.g. 250ms, 30s, 10m)";
    EXPECT_EQ(
        errors_of(result),
        (std::vector<std::string>{
            "bad.yaml:1:26: limits.client_timeout: invalid duration '30'" + expected,
            "bad.yaml:1:49: limits.keepalive_timeout: invalid duration '1.5s'" + expected,
            "bad.yaml:1:70: limits.drain_timeout: invalid duration '10 s'" + expected,
            "bad.yaml:3:36: providers.p.timeout: must be greater than 0s",
            "bad.yaml:3:57: providers.p.connect_timeout: invalid duration '1d'" + expected,
            "bad.yaml:7:14: routes[0].timeout: invalid duration '30S'" + expected,
            "bad.yaml:8:23: routes[0].promotion.hold: invalid duration '-1m'" + expected,
            "bad.yaml:8:38: routes[0].promotion.cooldown: invalid duration '1h30m'" + expected,
        }));
}

TEST(Errors, BadSizes) {
    const auto result = load(R"(
limits:
  max_body_bytes: 4MB
  max_header_bytes: 0
providers:
  p: {base_url: http://h}
routes:
  - {name: r, primary: {provider: p, model: m}}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:2:19: limits.max_body_bytes: invalid size '4MB': expected an "
                  "integer with B, KiB, MiB or GiB, or a number of bytes",
                  "bad.yaml:3:21: limits.max_header_bytes: must be greater than 0",
              }));
}

TEST(Errors, RangesOfRatesAndScores) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h, price: {input_per_mtok: -1}}
routes:
  - name: r
    primary: {provider: p, model: m}
    shadow: {sample_rate: 1.5}
    judge: {provider: p, model: j, pass_score: 101}
    promotion:
      threshold: 1.01
      confidence: 1
      shadow_after_promotion: -0.1
  - name: s
    primary: {provider: p, model: m}
    promotion: {confidence: 0, rollback_threshold: -0.5}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:2:51: providers.p.price.input_per_mtok: must be at least 0, got -1",
                  "bad.yaml:6:27: routes[0].shadow.sample_rate: must be between 0 and 1, got 1.5",
                  "bad.yaml:7:48: routes[0].judge.pass_score: must be between 0 and 100, got 101",
                  "bad.yaml:9:18: routes[0].promotion.threshold: must be between 0 and 1, got "
                  "1.01",
                  "bad.yaml:10:19: routes[0].promotion.confidence: must be greater than 0 and "
                  "less than 1, got 1",
                  "bad.yaml:11:31: routes[0].promotion.shadow_after_promotion: must be between "
                  "0 and 1, got -0.1",
                  "bad.yaml:14:29: routes[1].promotion.confidence: must be greater than 0 and "
                  "less than 1, got 0",
                  "bad.yaml:14:52: routes[1].promotion.rollback_threshold: must be between 0 "
                  "and 1, got -0.5",
              }));
}

TEST(Errors, CountsThatMustBePositive) {
    const auto result = load(R"(
limits: {max_connections: 0}
providers:
  p: {base_url: http://h, max_connections: 0}
routes:
  - name: r
    targets: [{provider: p, model: m, weight: 0}]
    shadow: {max_inflight: 0}
    promotion: {window: 0, min_samples: 0}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:1:27: limits.max_connections: must be at least 1, got 0",
                  "bad.yaml:3:44: providers.p.max_connections: must be at least 1, got 0",
                  "bad.yaml:6:47: routes[0].targets[0].weight: must be at least 1, got 0",
                  "bad.yaml:7:28: routes[0].shadow.max_inflight: must be at least 1, got 0",
                  "bad.yaml:8:25: routes[0].promotion.window: must be at least 1, got 0",
              }));
}

TEST(Errors, Ramp) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h}
routes:
  - {name: a, primary: {provider: p, model: m}, promotion: {ramp: [0, 100]}}
  - {name: b, primary: {provider: p, model: m}, promotion: {ramp: [10, 101]}}
  - {name: c, primary: {provider: p, model: m}, promotion: {ramp: [50, 50, 100]}}
  - {name: d, primary: {provider: p, model: m}, promotion: {ramp: [10, 50]}}
  - {name: e, primary: {provider: p, model: m}, promotion: {ramp: []}}
  - {name: f, primary: {provider: p, model: m}, promotion: {ramp: [60, 20, 100]}}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:4:68: routes[0].promotion.ramp[0]: must be between 1 and 100, got 0",
                  "bad.yaml:5:72: routes[1].promotion.ramp[1]: must be between 1 and 100, got "
                  "101",
                  "bad.yaml:6:72: routes[2].promotion.ramp[1]: ramp steps must increase (50 "
                  "after 50)",
                  "bad.yaml:7:72: routes[3].promotion.ramp[1]: the last ramp step must be 100",
                  "bad.yaml:8:67: routes[4].promotion.ramp: must not be empty (e.g. [100] or "
                  "[10, 50, 100])",
                  "bad.yaml:9:72: routes[5].promotion.ramp[1]: ramp steps must increase (20 "
                  "after 60)",
              }));
}

TEST(Errors, MinSamplesAboveWindow) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h}
routes:
  - name: explicit
    primary: {provider: p, model: m}
    promotion: {window: 20, min_samples: 21}
  - name: default-min-samples
    primary: {provider: p, model: m}
    promotion: {window: 10}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:6:42: routes[0].promotion.min_samples: min_samples (21) must not "
                  "exceed window (20)",
                  "bad.yaml:9:25: routes[1].promotion.window: min_samples (50) must not exceed "
                  "window (10)",
              }));
}

TEST(Errors, RollbackThresholdNotBelowThreshold) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h}
routes:
  - name: explicit
    primary: {provider: p, model: m}
    promotion: {threshold: 0.9, rollback_threshold: 0.9}
  - name: default-rollback
    primary: {provider: p, model: m}
    promotion: {threshold: 0.8}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:6:53: routes[0].promotion.rollback_threshold: rollback_threshold "
                  "(0.9) must be below threshold (0.9)",
                  "bad.yaml:9:28: routes[1].promotion.threshold: rollback_threshold (0.85) "
                  "must be below threshold (0.8)",
              }));
}

TEST(Errors, DuplicateNames) {
    const auto result = load(R"(
keys:
  - {name: team-a, key_env: A}
  - {name: team-a, key_env: B}
providers:
  p: {base_url: http://h}
  p: {base_url: http://other}
routes:
  - name: r
    primary: {provider: p, model: m}
  - name: r
    primary: {provider: p, model: m}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:3:12: keys[1].name: duplicate key name 'team-a'",
                  "bad.yaml:6:3: providers: duplicate provider 'p'",
                  "bad.yaml:10:11: routes[1].name: duplicate route name 'r' (first defined on "
                  "line 8)",
              }));
}

TEST(Errors, DuplicateKeyInAMap) {
    expect_error(R"(
providers:
  p: {base_url: http://h, timeout: 1s, timeout: 2s}
routes:
  - {name: r, primary: {provider: p, model: m}}
)",
                 "bad.yaml:2:40: providers.p: duplicate key 'timeout'");
}

TEST(Errors, PrimaryOrTargets) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h}
routes:
  - name: both
    primary: {provider: p, model: m}
    targets: [{provider: p, model: m}]
  - name: neither
    candidate: {provider: p, model: c}
  - name: empty
    targets: []
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:6:14: routes[0].targets: a route has either 'primary' or 'targets', "
                  "not both",
                  "bad.yaml:7:5: routes[1]: a route needs 'primary' or 'targets'",
                  "bad.yaml:10:14: routes[2].targets: must not be empty",
              }));
}

TEST(Errors, MissingRequiredKeys) {
    const auto result = load(R"(
keys:
  - {key_env: A}
providers:
  p: {kind: openai}
routes:
  - primary: {model: m}
  - name: ""
    primary: {provider: p, model: ""}
    judge: {provider: p}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:2:5: keys[0]: missing required key 'name'",
                  "bad.yaml:4:6: providers.p: missing required key 'base_url'",
                  "bad.yaml:6:5: routes[0]: missing required key 'name'",
                  "bad.yaml:6:14: routes[0].primary: missing required key 'provider'",
                  "bad.yaml:7:11: routes[1].name: must not be empty",
                  "bad.yaml:8:35: routes[1].primary.model: must not be empty",
                  "bad.yaml:9:12: routes[1].judge: missing required key 'model'",
              }));
}

TEST(Errors, WeightOnlyInsideTargets) {
    expect_error(R"(
providers:
  p: {base_url: http://h}
routes:
  - name: r
    primary: {provider: p, model: m, weight: 5}
)",
                 "bad.yaml:5:46: routes[0].primary.weight: 'weight' is only allowed in "
                 "'targets'");
}

TEST(Errors, JudgeMustNotBeTheCandidate) {
    const auto result = load(R"(
providers:
  p: {base_url: http://h}
  q: {base_url: http://q}
routes:
  - name: same
    primary: {provider: p, model: big}
    candidate: {provider: q, model: small}
    judge: {provider: q, model: small}
  - name: same-model-other-provider
    primary: {provider: p, model: big}
    candidate: {provider: q, model: small}
    judge: {provider: p, model: small}
)");
    EXPECT_EQ(errors_of(result),
              std::vector<std::string>{"bad.yaml:8:33: routes[0].judge.model: the judge must "
                                       "not be the candidate itself (q/small)"});
}

TEST(Errors, ClientKeys) {
    const auto result = load(R"(
keys:
  - {name: team-a, key_env: TURNOUT_TEST_KEY_A}
  - {name: team-b, key_env: ""}
providers:
  p: {base_url: http://h}
routes:
  - name: r
    match: {keys: [team-a, team-c]}
    primary: {provider: p, model: m}
  - name: s
    match: {keys: team-a}
    primary: {provider: p, model: m}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:3:29: keys[1].key_env: must not be empty",
                  "bad.yaml:8:28: routes[0].match.keys[1]: unknown client key 'team-c'",
                  "bad.yaml:11:19: routes[1].match.keys: expected a list, got 'team-a'",
              }));
}

TEST(Errors, MatchKeysWithoutAnyKeysSection) {
    expect_error(R"(
providers:
  p: {base_url: http://h}
routes:
  - {name: r, match: {keys: [team-a]}, primary: {provider: p, model: m}}
)",
                 "bad.yaml:4:30: routes[0].match.keys[0]: unknown client key 'team-a'");
}

TEST(Errors, ListenAddresses) {
    const auto result = load(R"(
listen: "8080"
admin: {listen: "::1:9090"}
providers:
  p: {base_url: http://h}
routes:
  - {name: r, primary: {provider: p, model: m}}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:1:9: listen: expected HOST:PORT (e.g. 0.0.0.0:8080 or [::1]:8080), "
                  "got '8080'",
                  "bad.yaml:2:17: admin.listen: an IPv6 address needs brackets, e.g. "
                  "[::1]:8080; got '::1:9090'",
              }));
    for (const char* bad : {":8080", "host:", "host:65536", "host:80a", "[::1]8080", "[::1]",
                            "host:-1", "ho st:80", "host:123456"}) {
        const auto r = load(std::string("listen: \"") + bad + R"("
providers: {p: {base_url: http://h}}
routes: [{name: r, primary: {provider: p, model: m}}]
)");
        ASSERT_EQ(r.errors.size(), 1u) << bad;
        EXPECT_TRUE(r.errors[0].text.starts_with("bad.yaml:1:9: listen: ")) << r.errors[0].text;
    }
}

TEST(Errors, BaseUrls) {
    const auto result = load(R"(
providers:
  a: {base_url: api.openai.com/v1}
  b: {base_url: "https://user:sk-live-123@api.openai.com/v1"}
  c: {base_url: "http://h:99999"}
  d: {base_url: {url: x}}
routes:
  - {name: r, primary: {provider: a, model: m}}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:2:17: providers.a.base_url: expected an http:// or https:// URL",
                  "bad.yaml:3:17: providers.b.base_url: the URL must not contain user info; put "
                  "the key in api_key_env",
                  "bad.yaml:4:17: providers.c.base_url: the URL port must be between 1 and "
                  "65535",
                  "bad.yaml:5:17: providers.d.base_url: expected a string, got a map",
              }));
}

TEST(Errors, Enums) {
    const auto result = load(R"(
log: {level: verbose, format: xml}
providers:
  p: {kind: gemini, base_url: http://h}
routes:
  - name: r
    primary: {provider: p, model: m}
    promotion: {mode: automatic}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:1:14: log.level: unknown value 'verbose' (expected trace, debug, "
                  "info, warn or error)",
                  "bad.yaml:1:31: log.format: unknown value 'xml' (expected json or text)",
                  "bad.yaml:3:13: providers.p.kind: unknown value 'gemini' (expected openai or "
                  "anthropic)",
                  "bad.yaml:7:23: routes[0].promotion.mode: unknown value 'automatic' "
                  "(expected shadow, auto, pin-primary or pin-candidate)",
              }));
}

TEST(Errors, HeaderMaps) {
    const auto result = load(R"(
providers:
  p:
    base_url: http://h
    headers: {"bad name": x, X-A: "a\r\nInjected: yes", x-b: 1, X-B: 2, x-c: [1]}
routes:
  - name: r
    match: {headers: {X-Team: a, x-team: b}}
    primary: {provider: p, model: m}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:4:15: providers.p.headers: invalid header name 'bad name'",
                  "bad.yaml:4:35: providers.p.headers.X-A: a header value must not contain CR, "
                  "LF or NUL",
                  "bad.yaml:4:65: providers.p.headers: duplicate header 'X-B'",
                  "bad.yaml:4:78: providers.p.headers.x-c: expected a string, got a list",
                  "bad.yaml:7:34: routes[0].match.headers: duplicate header 'x-team'",
              }));
}

TEST(Errors, CaFileMustBeReadable) {
    const auto dir = std::filesystem::temp_directory_path();
    const auto result = load(R"(
providers:
  p: {base_url: https://h, ca_file: /nonexistent/turnout/ca.pem}
  q: {base_url: https://h, ca_file: )" +
                             dir.string() + R"(}
routes:
  - {name: r, primary: {provider: p, model: m}}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:2:37: providers.p.ca_file: cannot read '/nonexistent/turnout/ca.pem': "
                  "No such file or directory",
                  "bad.yaml:3:37: providers.q.ca_file: cannot read '" + dir.string() +
                      "': is a directory",
              }));
}

TEST(Errors, StateUrlMustBeRedis) {
    const auto result = load(R"(
state: {path: "", url: "http://:secret@h"}
providers: {p: {base_url: http://h}}
routes: [{name: r, primary: {provider: p, model: m}}]
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:1:15: state.path: must not be empty",
                  "bad.yaml:1:24: state.url: expected a redis:// or rediss:// URL",
              }));
    EXPECT_NE(load_ok(R"(
state: {url: "redis://127.0.0.1:6379/0"}
providers: {p: {base_url: http://h}}
routes: [{name: r, primary: {provider: p, model: m}}]
)"),
              nullptr);
}

TEST(Errors, ManyAtOnceInFileOrder) {
    // Routes are read after providers whatever the file order; messages still come sorted.
    const auto result = load(R"(
routes:
  - name: r
    primary: {provider: nope, model: m}
    timeout: soon
listen: nowhere
providers:
  p: {kind: openai, base_url: ftp://h, bogus: 1}
log: {level: loud}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:3:25: routes[0].primary.provider: unknown provider 'nope'",
                  "bad.yaml:4:14: routes[0].timeout: invalid duration 'soon': expected an "
                  "integer with ms, s, m or h (e.g. 250ms, 30s, 10m)",
                  "bad.yaml:5:9: listen: expected HOST:PORT (e.g. 0.0.0.0:8080 or [::1]:8080), "
                  "got 'nowhere'",
                  "bad.yaml:7:31: providers.p.base_url: expected an http:// or https:// URL",
                  "bad.yaml:7:40: providers.p: unknown key 'bogus'",
                  "bad.yaml:8:14: log.level: unknown value 'loud' (expected trace, debug, info, "
                  "warn or error)",
              }));
    EXPECT_EQ(result.config, nullptr);
}

TEST(Errors, BrokenProvidersSectionDoesNotCascade) {
    const auto result = load(R"(
providers: oops
routes:
  - {name: r, primary: {provider: p, model: m}}
)");
    EXPECT_EQ(errors_of(result),
              std::vector<std::string>{
                  "bad.yaml:1:12: providers: expected a map of providers, got 'oops'"});
}

// ---------------------------------------------------------------------------------------------
// Whole-file problems

TEST(FileErrors, SyntaxErrorHasItsPosition) {
    expect_error(R"(
providers:
  p: {base_url: http://h
routes: []
)",
                 "bad.yaml:3:7: invalid YAML: end of map flow not found");
}

TEST(FileErrors, SyntaxErrorIllegalMapValue) {
    const auto result = load("listen: a: b\n");
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].text, "bad.yaml:1:10: invalid YAML: illegal map value");
}

TEST(FileErrors, EmptyFile) {
    for (const char* text : {"", "\n", "# only a comment\n", "---\n"}) {
        const auto result = config::load_config_string(text, "e.yaml", config::EnvPolicy::warn);
        EXPECT_EQ(errors_of(result),
                  std::vector<std::string>{"e.yaml:1:1: the config is empty: at least one "
                                           "provider and one route are required"})
            << "'" << text << "'";
    }
}

TEST(FileErrors, TopLevelNotAMap) {
    expect_error("- a\n- b\n", "bad.yaml:1:1: expected a map, got a list");
}

TEST(FileErrors, ProvidersAndRoutesRequired) {
    EXPECT_EQ(errors_of(load("listen: 0.0.0.0:8080\n")),
              (std::vector<std::string>{"bad.yaml:1:1: missing required key 'providers'",
                                        "bad.yaml:1:1: missing required key 'routes'"}));
    EXPECT_EQ(errors_of(load(R"(
providers: {}
routes: []
)")),
              (std::vector<std::string>{"bad.yaml:1:12: providers: at least one provider is "
                                        "required",
                                        "bad.yaml:2:9: routes: at least one route is required"}));
}

TEST(FileErrors, MissingFile) {
    const auto result =
        config::load_config_file("/nonexistent/turnout.yaml", config::EnvPolicy::warn);
    EXPECT_EQ(errors_of(result),
              std::vector<std::string>{
                  "/nonexistent/turnout.yaml:1:1: cannot read file: No such file or directory"});
    EXPECT_EQ(result.config, nullptr);
}

TEST(FileErrors, DirectoryInsteadOfFile) {
    const auto dir = std::filesystem::temp_directory_path().string();
    const auto result = config::load_config_file(dir, config::EnvPolicy::warn);
    EXPECT_EQ(errors_of(result),
              std::vector<std::string>{dir + ":1:1: cannot read file: is a directory"});
}

TEST(FileErrors, LoadsFromDiskWithThePathAsGiven) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("turnout_config_test_" + std::to_string(::getpid()) + ".yaml");
    std::ofstream(path) << "providers: {p: {base_url: http://h}}\nroutes: [{name: r}]\n";
    const auto bad = config::load_config_file(path.string(), config::EnvPolicy::warn);
    EXPECT_EQ(errors_of(bad),
              std::vector<std::string>{path.string() + ":2:10: routes[0]: a route needs "
                                                       "'primary' or 'targets'"});
    std::ofstream(path) << "providers: {p: {base_url: http://h}}\n"
                           "routes: [{name: r, primary: {provider: p, model: m}}]\n";
    const auto good = config::load_config_file(path.string(), config::EnvPolicy::warn);
    std::filesystem::remove(path);
    ASSERT_NE(good.config, nullptr);
    EXPECT_EQ(good.config->source_path, path.string());
}

// ---------------------------------------------------------------------------------------------
// Environment variables

constexpr const char* kEnvConfig = R"(
admin: {token_env: TURNOUT_TEST_ADMIN}
keys:
  - {name: k, key_env: TURNOUT_TEST_KEY}
providers:
  p: {base_url: http://h, api_key_env: TURNOUT_TEST_API}
routes:
  - {name: r, primary: {provider: p, model: m}}
)";

TEST(EnvPolicy, RequireMakesUnsetOrEmptyVariablesErrors) {
    ScopedEnv a{"TURNOUT_TEST_ADMIN", nullptr};
    ScopedEnv k{"TURNOUT_TEST_KEY", ""};
    ScopedEnv p{"TURNOUT_TEST_API", nullptr};
    const auto result = load(kEnvConfig, config::EnvPolicy::require);
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:1:20: admin.token_env: environment variable 'TURNOUT_TEST_ADMIN' is "
                  "not set",
                  "bad.yaml:3:24: keys[0].key_env: environment variable 'TURNOUT_TEST_KEY' is "
                  "empty",
                  "bad.yaml:5:40: providers.p.api_key_env: environment variable "
                  "'TURNOUT_TEST_API' is not set",
              }));
    EXPECT_TRUE(result.warnings.empty());
    EXPECT_EQ(result.config, nullptr);
}

TEST(EnvPolicy, WarnKeepsTheConfigAndReportsInTheSameFormat) {
    ScopedEnv a{"TURNOUT_TEST_ADMIN", nullptr};
    ScopedEnv k{"TURNOUT_TEST_KEY", ""};
    ScopedEnv p{"TURNOUT_TEST_API", "sk-very-secret"};
    const auto result = load(kEnvConfig, config::EnvPolicy::warn);
    EXPECT_TRUE(result.errors.empty());
    ASSERT_NE(result.config, nullptr);
    EXPECT_EQ(result.warnings,
              (std::vector<std::string>{
                  "bad.yaml:1:20: admin.token_env: environment variable 'TURNOUT_TEST_ADMIN' is "
                  "not set",
                  "bad.yaml:3:24: keys[0].key_env: environment variable 'TURNOUT_TEST_KEY' is "
                  "empty",
              }));
    EXPECT_EQ(result.config->providers[0].api_key_env, "TURNOUT_TEST_API");
    EXPECT_EQ(result.config->admin.token_env, "TURNOUT_TEST_ADMIN");
    EXPECT_EQ(result.config->keys[0].key_env, "TURNOUT_TEST_KEY");
}

TEST(EnvPolicy, AllSetMeansNoWarnings) {
    ScopedEnv a{"TURNOUT_TEST_ADMIN", "x"};
    ScopedEnv k{"TURNOUT_TEST_KEY", "y"};
    ScopedEnv p{"TURNOUT_TEST_API", "z"};
    const auto result = load(kEnvConfig, config::EnvPolicy::require);
    EXPECT_TRUE(result.errors.empty());
    EXPECT_TRUE(result.warnings.empty());
    EXPECT_NE(result.config, nullptr);
}

TEST(EnvPolicy, AbsentApiKeyEnvNeedsNothing) {
    const auto result = load(R"(
providers: {p: {base_url: http://localhost:11434/v1}}
routes: [{name: r, primary: {provider: p, model: m}}]
)",
                             config::EnvPolicy::require);
    EXPECT_TRUE(result.errors.empty());
    EXPECT_TRUE(result.warnings.empty());
}

TEST(EnvPolicy, SecretPastedInsteadOfANameIsNotEchoed) {
    const auto result = load(R"(
providers: {p: {base_url: http://h, api_key_env: sk-proj-AbC123}}
routes: [{name: r, primary: {provider: p, model: m}}]
)");
    EXPECT_EQ(errors_of(result),
              std::vector<std::string>{
                  "bad.yaml:1:50: providers.p.api_key_env: must be the name of an environment "
                  "variable (letters, digits and '_'), not the secret itself"});
}

// ---------------------------------------------------------------------------------------------
// judge.swap, judge.max_answer_bytes, judge.body

TEST(JudgeKeys, DefaultsWhenAbsent) {
    const auto c = load_ok(R"(
providers: {p: {base_url: http://h}}
routes:
  - name: r
    primary: {provider: p, model: m}
    candidate: {provider: p, model: c}
    judge: {provider: p, model: j}
)");
    ASSERT_NE(c, nullptr);
    const config::JudgeConfig& judge = c->routes[0].judge;
    EXPECT_FALSE(judge.swap);
    EXPECT_EQ(judge.max_answer_bytes, 64u * 1024);
    EXPECT_EQ(judge.extra_body_json, "");
}

TEST(JudgeKeys, AllThreeSet) {
    const auto c = load_ok(R"(
providers: {p: {base_url: http://h}}
routes:
  - name: r
    primary: {provider: p, model: m}
    candidate: {provider: p, model: c}
    judge:
      provider: p
      model: o3
      swap: true
      max_answer_bytes: 16KiB
      body: {temperature: null, reasoning_effort: low, metadata: {team: a}, n: 1}
)");
    ASSERT_NE(c, nullptr);
    const config::JudgeConfig& judge = c->routes[0].judge;
    EXPECT_TRUE(judge.swap);
    EXPECT_EQ(judge.max_answer_bytes, 16u * 1024);
    EXPECT_EQ(judge.extra_body_json,
              R"({"temperature":null,"reasoning_effort":"low","metadata":{"team":"a"},"n":1})");
}

TEST(JudgeKeys, WrongTypesAreErrorsWithTheirPositions) {
    const auto result = load(R"(
providers: {p: {base_url: http://h}}
routes:
  - name: r
    primary: {provider: p, model: m}
    candidate: {provider: p, model: c}
    judge:
      provider: p
      model: j
      swap: sometimes
      max_answer_bytes: lots
      body: [temperature]
  - name: s
    primary: {provider: p, model: m}
    candidate: {provider: p, model: c}
    judge: {provider: p, model: j, max_answer_bytes: 0, body: {model: x, stream: true}}
)");
    EXPECT_EQ(errors_of(result),
              (std::vector<std::string>{
                  "bad.yaml:9:13: routes[0].judge.swap: expected true or false, got 'sometimes'",
                  "bad.yaml:10:25: routes[0].judge.max_answer_bytes: invalid size 'lots': "
                  "expected an integer with B, KiB, MiB or GiB, or a number of bytes",
                  "bad.yaml:11:13: routes[0].judge.body: expected a map of body fields, got a list",
                  "bad.yaml:15:54: routes[1].judge.max_answer_bytes: must be greater than 0",
                  "bad.yaml:15:64: routes[1].judge.body: 'model' is set by the gateway from the "
                  "client's request",
                  "bad.yaml:15:74: routes[1].judge.body: 'stream' is set by the gateway from the "
                  "client's request",
              }));
    EXPECT_EQ(result.config, nullptr);
}

TEST(JudgeKeys, UnknownJudgeKeyIsStillAnError) {
    const auto result = load(R"(
providers: {p: {base_url: http://h}}
routes:
  - name: r
    primary: {provider: p, model: m}
    candidate: {provider: p, model: c}
    judge: {provider: p, model: j, swapped: true}
)");
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_NE(result.errors[0].text.find("routes[0].judge"), std::string::npos)
        << result.errors[0].text;
    EXPECT_NE(result.errors[0].text.find("swapped"), std::string::npos) << result.errors[0].text;
}

}  // namespace
}  // namespace turnout::config
