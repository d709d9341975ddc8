#include "base/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <memory>
#include <string>

namespace turnout::base {
namespace {

bool g_json = true;
std::shared_ptr<spdlog::logger> g_gateway;
std::shared_ptr<spdlog::logger> g_access;

void append_json_string(std::string& out, std::string_view text) {
    out.push_back('"');
    for (const char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

void append_value(std::string& out, const LogField& field, bool json) {
    std::visit(
        [&out, json](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string_view>) {
                if (json) {
                    append_json_string(out, v);
                } else {
                    out.append(v);
                }
            } else if constexpr (std::is_same_v<T, bool>) {
                out += v ? "true" : "false";
            } else if constexpr (std::is_same_v<T, double>) {
                out += fmt::format("{:.3f}", v);
            } else {
                out += fmt::format("{}", v);
            }
        },
        field.value);
}

spdlog::level::level_enum parse_level(const std::string& level) {
    if (level == "trace") return spdlog::level::trace;
    if (level == "debug") return spdlog::level::debug;
    if (level == "warn") return spdlog::level::warn;
    if (level == "error") return spdlog::level::err;
    return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name) {
    auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    auto logger = std::make_shared<spdlog::async_logger>(
        name, sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
    return logger;
}

}  // namespace

void init_logging(const LogConfig& config) {
    if (!g_gateway) {
        spdlog::init_thread_pool(65536, 1);
        g_gateway = make_logger("gateway");
        g_access = make_logger("access");
        spdlog::register_logger(g_gateway);
        spdlog::register_logger(g_access);
        // Flushing every line costs the logger thread a write(2) per request: under load it
        // competes with the I/O threads for the cores. Lines leave within a second instead;
        // warnings and errors at once.
        spdlog::flush_every(std::chrono::seconds(1));
    }
    g_json = config.format != "text";
    const char* pattern = g_json
                              ? R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n",%v})"
                              : "%Y-%m-%dT%H:%M:%S.%fZ %l %n %v";
    for (const auto& logger : {g_gateway, g_access}) {
        logger->set_pattern(pattern, spdlog::pattern_time_type::utc);
        logger->set_level(parse_level(config.level));
        logger->flush_on(spdlog::level::warn);
    }
}

spdlog::logger& gateway_log() { return *g_gateway; }
spdlog::logger& access_log() { return *g_access; }

void log_event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
               std::initializer_list<LogField> fields) {
    if (!logger.should_log(level)) return;
    std::string line;
    line.reserve(256);
    if (g_json) {
        line += "\"msg\":";
        append_json_string(line, msg);
        for (const LogField& field : fields) {
            line.push_back(',');
            append_json_string(line, field.key);
            line.push_back(':');
            append_value(line, field, true);
        }
    } else {
        line.append(msg);
        for (const LogField& field : fields) {
            line.push_back(' ');
            line.append(field.key);
            line.push_back('=');
            append_value(line, field, false);
        }
    }
    logger.log(level, "{}", line);
}

void flush_logs() {
    if (g_gateway) g_gateway->flush();
    if (g_access) g_access->flush();
}

}  // namespace turnout::base
