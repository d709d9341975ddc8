#pragma once
/// The gateway process: API and admin listeners, worker threads, graceful drain.
/// No Beast in this header: it is included by main.cpp and the demo.

#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace turnout::gateway {

struct ServeOptions {
    unsigned threads = 0;     ///< worker threads (one io_context each); 0 = CPU count
    std::string config_path;  ///< re-read on SIGHUP and POST /admin/reload; "" = embedded
};

/// Serves until SIGTERM/SIGINT, then stops accepting, lets in-flight requests and streams
/// finish up to `limits.drain_timeout`, and returns the exit code (0 after a clean drain).
/// SIGHUP reloads the config file.
/// Throws std::runtime_error on start-up failures (bind, TLS files).
int serve(std::shared_ptr<const config::Config> config, const ServeOptions& options);

}  // namespace turnout::gateway
