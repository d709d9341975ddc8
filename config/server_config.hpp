#pragma once
/// The process-level sections of the config: the admin listener, the state store, the
/// connection limits, the log, and the client keys (`admin:`, `state:`, `limits:`, `log:`,
/// `keys:`). The API listener itself is Config::listen (config.hpp).

#include <chrono>
#include <cstdint>
#include <string>

#include "base/log_config.hpp"
#include "config/duration.hpp"

namespace turnout::config {

struct AdminConfig {
    std::string listen = "127.0.0.1:9090";
    std::string token_env;  ///< empty = /admin/* needs no token
};

struct StateConfig {
    std::string path = "./turnout-state";
    std::string url;  ///< redis://... (shared state); empty = local disk at `path`
};

struct LimitsConfig {
    std::uint64_t max_body_bytes = 4ull << 20;
    std::uint64_t max_header_bytes = 64ull << 10;
    Duration client_timeout = std::chrono::seconds(30);
    Duration keepalive_timeout = std::chrono::seconds(60);
    std::uint32_t max_connections = 10000;
    /// High-water mark of API requests in flight (streams included) across the process;
    /// beyond it a new request gets 503 + Retry-After at once. 0 = 90% of max_connections,
    /// so the last connections get a fast answer instead of a wait.
    std::uint32_t max_inflight = 0;
    /// turnout extension: SIGTERM drain deadline.
    Duration drain_timeout = std::chrono::seconds(10);
};

using LogConfig = base::LogConfig;

struct ClientKeyConfig {
    std::string name;
    std::string key_env;
};

}  // namespace turnout::config
