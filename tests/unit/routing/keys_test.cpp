// KeyRing (client keys compared in constant time) and Bearer token parsing.
#include "routing/keys.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <optional>
#include <string>

namespace turnout::routing {
namespace {

config::Config config_with_keys(std::vector<std::pair<std::string, std::string>> keys) {
    config::Config c;
    for (auto& [name, env] : keys) c.keys.push_back(config::ClientKeyConfig{name, env});
    return c;
}

/// An environment that is a map, so no test touches the process environment but one.
EnvLookup fake_env(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        const auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

class KeyRingTest : public ::testing::Test {
  protected:
    const KeyRing ring_{config_with_keys({{"team-a", "A_KEY"}, {"team-b", "B_KEY"}}),
                        fake_env({{"A_KEY", "sk-team-a-0123456789"}, {"B_KEY", "sk-b"}})};
};

TEST_F(KeyRingTest, RightKeyGivesItsName) {
    EXPECT_TRUE(ring_.enabled());
    EXPECT_EQ(ring_.usable_keys(), 2u);
    EXPECT_EQ(ring_.authenticate("sk-team-a-0123456789"),
              std::optional<std::string_view>("team-a"));
    EXPECT_EQ(ring_.authenticate("sk-b"), std::optional<std::string_view>("team-b"));
}

TEST_F(KeyRingTest, WrongEmptyPrefixLongerAreRefused) {
    EXPECT_EQ(ring_.authenticate("sk-team-a-0123456780"), std::nullopt);  // last byte differs
    EXPECT_EQ(ring_.authenticate("Sk-team-a-0123456789"), std::nullopt);  // first byte differs
    EXPECT_EQ(ring_.authenticate(""), std::nullopt);
    EXPECT_EQ(ring_.authenticate("sk-team-a-012345678"), std::nullopt);    // prefix
    EXPECT_EQ(ring_.authenticate("sk-team-a-01234567890"), std::nullopt);  // longer
    EXPECT_EQ(ring_.authenticate(std::string_view("sk-b\0", 5)), std::nullopt);
    EXPECT_EQ(ring_.authenticate("sk-"), std::nullopt);
    EXPECT_EQ(ring_.authenticate("xsk-b"), std::nullopt);
    EXPECT_EQ(ring_.authenticate("team-a"), std::nullopt);  // the name is not the key
    EXPECT_EQ(ring_.authenticate(std::string(100000, 'x')), std::nullopt);
}

TEST(KeyRing, NoKeysConfiguredIsDisabled) {
    const KeyRing ring(config::Config{}, fake_env({{"A_KEY", "x"}}));
    EXPECT_FALSE(ring.enabled());
    EXPECT_EQ(ring.authenticate("x"), std::nullopt);
    EXPECT_EQ(ring.authenticate(""), std::nullopt);
    EXPECT_FALSE(KeyRing().enabled());
}

TEST(KeyRing, UnsetOrEmptySecretsNeverMatchButKeepTheRingEnabled) {
    const KeyRing ring(config_with_keys({{"unset", "NOPE"}, {"empty", "EMPTY"}}),
                       fake_env({{"EMPTY", ""}}));
    EXPECT_TRUE(ring.enabled());
    EXPECT_EQ(ring.usable_keys(), 0u);
    EXPECT_EQ(ring.authenticate(""), std::nullopt);
    EXPECT_EQ(ring.authenticate("NOPE"), std::nullopt);
    EXPECT_EQ(ring.authenticate("x"), std::nullopt);
}

TEST(KeyRing, SharedSecretAnswersWithTheFirstKey) {
    const KeyRing ring(config_with_keys({{"first", "A"}, {"second", "B"}}),
                       fake_env({{"A", "same"}, {"B", "same"}}));
    EXPECT_EQ(ring.authenticate("same"), std::optional<std::string_view>("first"));
}

TEST(KeyRing, LastOfManyKeysIsFound) {
    std::vector<std::pair<std::string, std::string>> keys;
    std::map<std::string, std::string> env;
    for (int i = 0; i < 50; ++i) {
        keys.emplace_back("key-" + std::to_string(i), "ENV_" + std::to_string(i));
        env["ENV_" + std::to_string(i)] = "secret-" + std::to_string(i * 7919);
    }
    const KeyRing ring(config_with_keys(keys), fake_env(env));
    EXPECT_EQ(ring.authenticate("secret-" + std::to_string(49 * 7919)),
              std::optional<std::string_view>("key-49"));
    EXPECT_EQ(ring.authenticate("secret-0"), std::optional<std::string_view>("key-0"));
    EXPECT_EQ(ring.authenticate("secret-1"), std::nullopt);
}

TEST(KeyRing, ReadsTheProcessEnvironmentByDefault) {
    ::setenv("TURNOUT_TEST_KEYRING_SECRET", "from-the-env", 1);
    const KeyRing ring(config_with_keys({{"env-key", "TURNOUT_TEST_KEYRING_SECRET"}}));
    ::unsetenv("TURNOUT_TEST_KEYRING_SECRET");
    EXPECT_EQ(ring.authenticate("from-the-env"), std::optional<std::string_view>("env-key"));
    EXPECT_EQ(process_env("TURNOUT_TEST_KEYRING_SECRET"), std::nullopt);
}

TEST(BearerToken, Parses) {
    EXPECT_EQ(bearer_token("Bearer abc"), "abc");
    EXPECT_EQ(bearer_token("bearer abc"), "abc");
    EXPECT_EQ(bearer_token("BEARER   abc  "), "abc");
    EXPECT_EQ(bearer_token("  Bearer\tabc\t"), "abc");
    EXPECT_EQ(bearer_token("bEaReR sk-x.y_z/+="), "sk-x.y_z/+=");
}

TEST(BearerToken, RejectsOtherSchemesAndEmptyTokens) {
    EXPECT_EQ(bearer_token(""), "");
    EXPECT_EQ(bearer_token("Bearer"), "");
    EXPECT_EQ(bearer_token("Bearer "), "");
    EXPECT_EQ(bearer_token("Bearer   \t "), "");
    EXPECT_EQ(bearer_token("Bearerabc"), "");
    EXPECT_EQ(bearer_token("Basic abc"), "");
    EXPECT_EQ(bearer_token("Bear abc"), "");
    EXPECT_EQ(bearer_token("abc"), "");
    EXPECT_EQ(bearer_token("Bearer: abc"), "");
}

}  // namespace
}  // namespace turnout::routing

namespace turnout::routing {
namespace {

TEST(ConstantTimeEqual, ComparesWholeSecrets) {
    EXPECT_TRUE(constant_time_equal("s3cret-token", "s3cret-token"));
    EXPECT_FALSE(constant_time_equal("s3cret-token", "s3cret-tokem"));
    EXPECT_FALSE(constant_time_equal("s3cret-token", "s3cret"));
    EXPECT_FALSE(constant_time_equal("s3cret-token", "s3cret-token-and-more"));
    EXPECT_FALSE(constant_time_equal("s3cret-token", ""));
    EXPECT_TRUE(constant_time_equal("", ""));
    EXPECT_FALSE(constant_time_equal("", "x"));
}

}  // namespace
}  // namespace turnout::routing
