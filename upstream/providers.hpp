#pragma once
/// What calling a config's providers needs beyond the config itself: each provider's
/// credential (from its `api_key_env`) and TLS client context (system store plus `ca_file`),
/// built once per config load, off the data path, and shared read-only by every pool.
///
/// No Beast here: the TLS context is only declared.

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace boost::asio::ssl {
class context;
}

namespace turnout::upstream {

/// Immutable once built; shared across threads as std::shared_ptr<const Providers>.
class Providers {
  public:
    /// Throws std::runtime_error when an `api_key_env` is unset or a `ca_file` unusable
    /// (start-up and reload only). The message names the variable, never its value.
    static std::shared_ptr<const Providers> build(std::shared_ptr<const config::Config> config);

    const config::Config& config() const { return *config_; }
    /// The full header value (`Bearer KEY` or Anthropic's bare key), "" for none. A secret.
    std::string_view credential(std::string_view provider) const;
    /// null for plain-TCP providers.
    std::shared_ptr<boost::asio::ssl::context> tls_context(std::string_view provider) const;

  private:
    std::shared_ptr<const config::Config> config_;
    std::map<std::string, std::string, std::less<>> credentials_;
    std::map<std::string, std::shared_ptr<boost::asio::ssl::context>, std::less<>> tls_;
};

/// The value of environment variable `name`; throws std::runtime_error naming it and `what`
/// when it is unset or empty.
std::string required_env(const std::string& name, const std::string& what);

}  // namespace turnout::upstream
