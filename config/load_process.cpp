// The process-level sections: listen, admin, state, limits, log.
#include <string>

#include "config/sections.hpp"
#include "config/values.hpp"

namespace turnout::config::detail {
namespace {

void load_listen(const MapView& m, std::string& out) {
    if (!m.get("listen") || !m.string("listen", out)) return;
    if (auto message = listen_error(out); !message.empty()) m.error("listen", message);
}

void load_admin(LoadContext& ctx, const Field& f, AdminConfig& admin) {
    MapView m(ctx.diag, f, {"listen", "token_env"});
    if (!m.valid()) return;
    load_listen(m, admin.listen);
    ctx.refs.read_env_name(m, "token_env", admin.token_env);
}

void load_state(LoadContext& ctx, const Field& f, StateConfig& state) {
    MapView m(ctx.diag, f, {"path", "url"});
    if (!m.valid()) return;
    if (m.get("path") && m.string("path", state.path) && state.path.empty()) {
        m.error("path", "must not be empty");
    }
    if (!m.string("url", state.url) || state.url.empty()) return;
    if (!state.url.starts_with("redis://") && !state.url.starts_with("rediss://")) {
        // The URL is not echoed: it may carry a password.
        m.error("url", "expected a redis:// or rediss:// URL");
    }
}

void load_limits(LoadContext& ctx, const Field& f, LimitsConfig& limits) {
    MapView m(ctx.diag, f,
              {"max_body_bytes", "max_header_bytes", "client_timeout", "keepalive_timeout",
               "max_connections", "max_inflight", "drain_timeout"});
    if (!m.valid()) return;
    m.size("max_body_bytes", limits.max_body_bytes);
    m.size("max_header_bytes", limits.max_header_bytes);
    m.duration("client_timeout", limits.client_timeout, true);
    m.duration("keepalive_timeout", limits.keepalive_timeout);
    m.count("max_connections", limits.max_connections, 1);
    m.count("max_inflight", limits.max_inflight);
    m.duration("drain_timeout", limits.drain_timeout);
}

void load_log(LoadContext& ctx, const Field& f, LogConfig& log) {
    MapView m(ctx.diag, f, {"level", "format"});
    if (!m.valid()) return;
    m.choice<std::string>("level", log.level,
                          {{"trace", "trace"},
                           {"debug", "debug"},
                           {"info", "info"},
                           {"warn", "warn"},
                           {"error", "error"}});
    m.choice<std::string>("format", log.format, {{"json", "json"}, {"text", "text"}});
}

}  // namespace

void load_process(LoadContext& ctx, const MapView& root, Config& config) {
    load_listen(root, config.listen);
    if (const auto* f = root.get("admin")) load_admin(ctx, *f, config.admin);
    if (const auto* f = root.get("state")) load_state(ctx, *f, config.state);
    if (const auto* f = root.get("limits")) load_limits(ctx, *f, config.limits);
    if (const auto* f = root.get("log")) load_log(ctx, *f, config.log);
}

}  // namespace turnout::config::detail
