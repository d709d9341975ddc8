#pragma once
/// Structured logging: every line is one JSON object (`log.format: json`) or
/// `time level logger msg key=value...` (`text`). Loggers are asynchronous with
/// overrun_oldest, so I/O threads never block on a slow stdout.

#include <spdlog/spdlog.h>

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <variant>

#include "base/log_config.hpp"

namespace turnout::base {

struct LogField {
    std::string_view key;
    std::variant<std::string_view, std::int64_t, double, bool> value;
};

/// Creates the `gateway` and `access` loggers. Safe to call again (reconfigures).
void init_logging(const LogConfig& config);

spdlog::logger& gateway_log();
spdlog::logger& access_log();

/// Writes `msg` plus fields. Values are escaped; never pass secrets or prompts.
void log_event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
               std::initializer_list<LogField> fields);

/// Flushes the asynchronous queues (before exit).
void flush_logs();

}  // namespace turnout::base
