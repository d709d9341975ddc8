#pragma once
/// Loads and validates a YAML config (CONTRACT.md "Configuration" and "Values").
/// Every problem is collected, none stops the scan: the caller prints them all.

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace turnout::config {

/// One problem, already formatted as `FILE:LINE:COL: message` (1-based line and column).
struct ConfigError {
    std::string text;
};

struct LoadResult {
    std::shared_ptr<const Config> config;  ///< null when `errors` is non-empty
    std::vector<ConfigError> errors;
    std::vector<std::string> warnings;  ///< e.g. unset api_key_env in `check`
};

enum class EnvPolicy {
    require,  ///< serve: an unset api_key_env / key_env / token_env is an error
    warn,     ///< check: unset variables are warnings only
};

/// `display_path` is FILE in the messages (the path as the user typed it).
LoadResult load_config_file(const std::string& path, EnvPolicy env_policy);
LoadResult load_config_string(const std::string& yaml_text, const std::string& display_path,
                              EnvPolicy env_policy);

/// "250ms", "30s", "10m", "2h", "0s". Returns false on anything else.
bool parse_duration(std::string_view text, Duration& out);
/// "4MiB", "64KiB", "1GiB", "512B", "1048576". Returns false on anything else.
bool parse_size(std::string_view text, std::uint64_t& out);
/// "https://host:port/path" into its parts. Returns an error message or "".
std::string parse_upstream_url(std::string_view url, UpstreamAddress& out);

}  // namespace turnout::config
