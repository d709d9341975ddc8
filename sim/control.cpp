#include "sim/control.hpp"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

#include "sim/json_writer.hpp"

namespace turnout::sim {
namespace {

void render_stats(std::string& out, const Stats& stats) {
    const std::pair<std::string_view, std::uint64_t> fields[] = {
        {"connections_accepted", stats.connections_accepted.load()},
        {"requests", stats.requests.load()},
        {"streams_started", stats.streams_started.load()},
        {"streams_completed", stats.streams_completed.load()},
        {"streams_aborted", stats.streams_aborted.load()},
        {"degraded_answers", stats.degraded_answers.load()},
        {"judge_replies", stats.judge_replies.load()},
    };
    out = "{";
    for (const auto& [name, value] : fields) {
        append_json_string(out, name);
        out += ':';
        append_number(out, value);
        out += ',';
    }
    out += R"("active_streams":)";
    append_number(
        out, static_cast<std::uint64_t>(std::max<std::int64_t>(0, stats.active_streams.load())));
    out += '}';
}

// Repeated header fields become one member with their values joined by ", " (RFC 9110 5.3).
void render_last_request(std::string& out, const RequestData& request) {
    out = R"({"method":)";
    append_json_string(out, request.method);
    out += R"(,"target":)";
    append_json_string(out, request.target);
    out += R"(,"headers":{)";
    bool first = true;
    for (std::size_t i = 0; i < request.header_count; ++i) {
        const std::string& name = request.headers[i].first;
        bool repeated = false;
        for (std::size_t j = 0; j < i && !repeated; ++j) {
            repeated = request.headers[j].first == name;
        }
        if (repeated) {
            continue;
        }
        out += first ? "" : ",";
        first = false;
        append_json_string(out, name);
        out += R"(:")";
        append_escaped(out, request.headers[i].second);
        for (std::size_t k = i + 1; k < request.header_count; ++k) {
            if (request.headers[k].first == name) {
                out += ", ";
                append_escaped(out, request.headers[k].second);
            }
        }
        out += '"';
    }
    out += R"(},"body":)";
    append_json_string(out, request.body);
    out += '}';
}

unsigned last_request(Exchange& exchange) {
    SimState& state = exchange.state();
    {
        std::lock_guard lock(state.last_mutex);
        if (state.has_last) {
            render_last_request(exchange.body(), state.last);
            return 200;
        }
    }
    exchange.render_failure(404, "no request received yet", "not_found");
    return 404;
}

// POST /_sim/config: a JSON object whose members (only `degrade_rate` so far) are checked
// all before any is applied. Returns the status; on failure the error body is in body().
unsigned configure(Exchange& exchange) {
    Document doc = exchange.new_document();
    if (!exchange.parse_body(doc)) {
        return 400;
    }
    std::optional<double> rate;
    for (const auto& member : doc.GetObject()) {
        const std::string_view name(member.name.GetString(), member.name.GetStringLength());
        if (name != "degrade_rate") {
            std::string& problem = exchange.scratch();
            problem = "unknown simulator setting '";
            problem += name;
            problem += "' (known: degrade_rate)";
            exchange.render_failure(400, problem, "invalid_config");
            return 400;
        }
        if (!member.value.IsNumber() || !(member.value.GetDouble() >= 0) ||
            !(member.value.GetDouble() <= 1)) {
            exchange.render_failure(400, "degrade_rate: expected a number from 0 to 1",
                                    "invalid_config");
            return 400;
        }
        if (exchange.anthropic() || exchange.settings().role != Role::answer) {
            exchange.render_failure(400, "degrade_rate applies to --kind openai --role answer only",
                                    "invalid_config");
            return 400;
        }
        rate = member.value.GetDouble();
    }
    if (rate) {
        exchange.state().degrade_rate.store(*rate, std::memory_order_relaxed);
    }
    return 200;
}

void render_config(std::string& out, const SimState& state) {
    const Settings& settings = state.settings;
    out = R"({"kind":)";
    append_json_string(out, settings.kind == Kind::anthropic ? "anthropic" : "openai");
    out += R"(,"role":)";
    append_json_string(out, settings.role == Role::judge ? "judge" : "answer");
    out += R"(,"degrade_rate":)";
    append_double(out, state.degrade_rate.load(std::memory_order_relaxed));
    out += R"(,"judge_garbage":)";
    out += settings.judge_garbage ? "true" : "false";
    out += R"(,"judge_score":)";
    if (settings.judge_score >= 0) {
        append_number(out, static_cast<std::uint64_t>(settings.judge_score));
    } else {
        out += "null";
    }
    out += '}';
}

// active_streams is a gauge of live streams, not a counter: it is left alone.
void reset(SimState& state) {
    Stats& stats = state.stats;
    for (auto* counter : {&stats.connections_accepted, &stats.requests, &stats.streams_started,
                          &stats.streams_completed, &stats.streams_aborted, &stats.degraded_answers,
                          &stats.judge_replies}) {
        counter->store(0);
    }
    std::lock_guard lock(state.last_mutex);
    state.has_last = false;
}

}  // namespace

unsigned serve_control(Exchange& exchange, std::string_view path) {
    const std::string_view method = exchange.request().method;
    const bool get = method == "GET";
    if (get && path == "/_sim/stats") {
        render_stats(exchange.body(), exchange.state().stats);
        return 200;
    }
    if (get && path == "/_sim/last_request") {
        return last_request(exchange);
    }
    if (path == "/_sim/config" && (get || method == "POST")) {
        const unsigned status = get ? 200 : configure(exchange);
        if (status == 200) {
            render_config(exchange.body(), exchange.state());
        }
        return status;
    }
    if (method == "POST" && path == "/_sim/reset") {
        reset(exchange.state());
        exchange.body().assign(R"({"reset":true})");
        return 200;
    }
    exchange.render_failure(404, "no such simulator control endpoint", "not_found");
    return 404;
}

}  // namespace turnout::sim
