#pragma once
/// Client keys (CONTRACT.md `keys:`, "Upstream auth"; issue 3): which configured key, if any,
/// a client presented. Only the key's name leaves this file: it goes to route matching and to
/// the logs, the secret never does. Secrets are read from the environment once, when the ring
/// is built for a config.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace turnout::routing {

/// Reads an environment variable: std::nullopt when unset. Injectable so tests need no setenv.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (std::getenv).
std::optional<std::string> process_env(const std::string& name);

/// The secrets of `keys:` by name. Immutable after construction, so `authenticate` may run on
/// any number of threads at once. Deliberately has no operator<< and no accessor for secrets.
class KeyRing {
  public:
    /// A ring with no keys: not enabled, authenticates nobody.
    KeyRing() = default;

    /// Reads each `key_env` through `env`. A key whose variable is unset or empty is kept out
    /// of the ring (it can never match, least of all an empty token), but the ring stays
    /// enabled: with keys configured and none usable every request is refused, never let in.
    explicit KeyRing(const config::Config& config, const EnvLookup& env = process_env);

    /// True when the config has a `keys:` section with at least one key: clients must then
    /// present one (401 otherwise).
    bool enabled() const { return enabled_; }

    /// The number of keys with a usable (set, non-empty) secret.
    std::size_t usable_keys() const { return keys_.size(); }

    /// The name of the key whose secret equals `presented_token`, or std::nullopt (also for an
    /// empty token). Constant time with respect to the secrets: every key is compared, each
    /// over the full length of the presented token, with no early exit on a mismatching byte or
    /// a differing length; the time depends only on the token's length and the number of keys.
    /// The view points into this ring.
    std::optional<std::string_view> authenticate(std::string_view presented_token) const;

  private:
    struct Key {
        std::string name;
        std::string secret;  ///< never empty
    };

    std::vector<Key> keys_;
    bool enabled_ = false;
};

/// The token of an `Authorization: Bearer <token>` value: the scheme compared case-insensitively,
/// spaces and tabs around the token trimmed. "" when the value is not a Bearer credential or
/// has no token.
std::string_view bearer_token(std::string_view authorization_header_value);

/// Compares a secret with what a client presented without leaking, through timing, where
/// they differ or how long the secret is (e.g. the admin token).
bool constant_time_equal(std::string_view secret, std::string_view presented);

}  // namespace turnout::routing
