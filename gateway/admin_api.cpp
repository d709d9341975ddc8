#include "gateway/admin_api.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "base/json_input.hpp"
#include "gateway/errors.hpp"
#include "metrics/metrics.hpp"
#include "routing/keys.hpp"
#include "shadow/runtime.hpp"

namespace turnout::gateway {
namespace {

using shadow::ShadowRuntime;

constexpr std::size_t kDefaultVerdicts = 50;
constexpr std::size_t kMaxVerdicts = 10000;

AdminAnswer json(unsigned status, std::string body) { return {status, std::move(body)}; }

AdminAnswer error(errc code, std::string_view message) {
    return {error_shape(code).status, openai_error_body(code, message)};
}

std::string reload_json(const ReloadOutcome& outcome) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    writer.StartObject();
    writer.Key("status");
    writer.String(outcome.ok ? "reloaded" : "rejected");
    writer.Key("errors");
    writer.StartArray();
    for (const auto& message : outcome.errors) writer.String(message);
    writer.EndArray();
    writer.EndObject();
    return {out.GetString(), out.GetSize()};
}

/// `?limit=N` of the verdicts call: 50 by default, at most 10,000; nullopt when malformed.
std::optional<std::size_t> verdict_limit(std::string_view target) {
    const auto text = query_parameter(target, "limit");
    if (text.empty()) return kDefaultVerdicts;
    std::size_t parsed = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (ec != std::errc() || end != text.data() + text.size() || parsed == 0) return std::nullopt;
    return std::min(parsed, kMaxVerdicts);
}

/// The command a POST names, or nullopt (with `pin_error` set when the pin body was bad).
std::optional<ShadowRuntime::Command> command_for(std::string_view action, std::string_view body,
                                                  bool& pin_error) {
    if (action == "promote") return ShadowRuntime::Command::promote;
    if (action == "rollback") return ShadowRuntime::Command::rollback;
    if (action == "unpin") return ShadowRuntime::Command::unpin;
    if (action != "pin") return std::nullopt;
    rapidjson::Document document;
    const bool valid = base::parse_json_input(body, document) && document.IsObject() &&
                       document.HasMember("target") && document["target"].IsString();
    const std::string_view side = valid ? document["target"].GetString() : "";
    if (side == "primary") return ShadowRuntime::Command::pin_primary;
    if (side == "candidate") return ShadowRuntime::Command::pin_candidate;
    pin_error = true;
    return std::nullopt;
}

boost::asio::awaitable<AdminAnswer> answer_routes(ShadowRuntime& shadow, AdminRequest request) {
    if (request.path == "/admin/routes") {
        if (!request.get) co_return error(errc::method_not_allowed, "use GET");
        co_return json(200, shadow.routes_json());
    }
    constexpr std::string_view kPrefix = "/admin/routes/";
    const std::string_view rest = request.path.substr(kPrefix.size());
    const auto slash = rest.rfind('/');
    if (slash == std::string_view::npos) co_return error(errc::not_found, "no such admin path");
    std::string name(rest.substr(0, slash));
    const std::string_view action = rest.substr(slash + 1);
    if (action == "verdicts" && request.get) {
        const auto limit = verdict_limit(request.target);
        if (!limit) co_return error(errc::invalid_request, "limit must be a positive integer");
        const auto verdicts = co_await shadow.verdicts_json(std::move(name), *limit);
        if (!verdicts) co_return error(errc::not_found, "unknown route");
        co_return json(200, *verdicts);
    }
    if (!request.post) co_return error(errc::not_found, "no such admin path");
    bool pin_error = false;
    const auto command = command_for(action, request.body, pin_error);
    if (pin_error) {
        co_return error(errc::invalid_request, R"(pin needs {"target": "primary" or "candidate"})");
    }
    if (!command) co_return error(errc::not_found, "no such admin path");
    const auto result = co_await shadow.command(std::move(name), *command);
    if (!result.known_route) co_return error(errc::not_found, "unknown route");
    if (result.refused) {
        co_return error(errc::conflict, "refused by the route's mode or pin (see its JSON)");
    }
    co_return json(200, result.json);
}

}  // namespace

std::string_view query_parameter(std::string_view target, std::string_view name) {
    const auto question = target.find('?');
    if (question == std::string_view::npos) return {};
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) {
            return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return {};
}

boost::asio::awaitable<AdminAnswer> answer_admin(AdminContext context, AdminRequest request) {
    const bool draining = context.draining != nullptr && context.draining->load();
    if (request.get && request.path == "/healthz") co_return json(200, R"({"status":"ok"})");
    if (request.get && request.path == "/readyz") {
        co_return draining ? json(503, R"({"status":"draining"})")
                           : json(200, R"({"status":"ready"})");
    }
    if (request.get && request.path == "/metrics" && context.metrics != nullptr) {
        co_return AdminAnswer{200, context.metrics->render(), metrics::Metrics::kContentType};
    }
    if (request.path.starts_with("/admin/")) {
        const auto presented = routing::bearer_token(request.authorization);
        if (!context.admin_token.empty() &&
            !routing::constant_time_equal(presented, context.admin_token)) {
            co_return error(errc::unauthorized, "missing or wrong admin token");
        }
        if (request.path == "/admin/reload" && request.post) {
            // The control loop stops at the drain: nobody would answer.
            if (draining) co_return json(503, R"({"status":"draining","errors":[]})");
            const ReloadOutcome outcome = co_await context.reload();
            co_return json(outcome.ok ? 200 : 400, reload_json(outcome));
        }
        if (context.shadow != nullptr && request.path.starts_with("/admin/routes")) {
            co_return co_await answer_routes(*context.shadow, request);
        }
    }
    co_return error(errc::not_found, "no such admin path");
}

}  // namespace turnout::gateway
