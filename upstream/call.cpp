// Background calls: one non-streamed chat exchange, translated and measured.

#include "upstream/call.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>

#include "base/json_input.hpp"
#include "protocol/egress.hpp"
#include "upstream/pool.hpp"

namespace turnout::upstream {
namespace {

/// `body` (a JSON object) without the top-level fields that the object `fields_json` sets to
/// null: `judge.body`'s way to remove a field turnout would send (`temperature: null`). The
/// fields were merged by upstream_body like any provider's `body:`; only the removal is done
/// here.
std::string without_null_fields(std::string body, std::string_view fields_json) {
    rapidjson::Document fields;
    rapidjson::Document document;
    if (!base::parse_json_input(fields_json, fields) || !fields.IsObject() ||
        !base::parse_json_input(body, document) || !document.IsObject()) {
        return body;
    }
    bool removed = false;
    for (const auto& field : fields.GetObject()) {
        if (field.value.IsNull()) removed = document.RemoveMember(field.name) || removed;
    }
    return removed ? protocol::to_json(document) : body;
}

}  // namespace

/// One non-streamed chat call made by the gateway itself (a mirrored copy or a judge call),
/// translated for an Anthropic provider.
asio::awaitable<Measured> background_call(CallPlan plan, std::string openai_body,
                                          std::string request_id, config::Duration timeout) {
    // The provider's own deadline binds its background calls as it binds live ones: a hung
    // candidate must not hold a shadow slot for the whole route timeout.
    timeout = std::min(timeout, plan.provider.timeout);
    Measured measured;
    rapidjson::Document document;
    if (!base::parse_json_input(openai_body, document) || !document.IsObject() ||
        !document.HasMember("model") || !document["model"].IsString()) {
        measured.error = "request is not a chat request";
        co_return measured;
    }
    document.RemoveMember("stream_options");
    if (document.HasMember("stream")) document["stream"].SetBool(false);
    const std::string body_text = protocol::to_json(document);
    std::string error;
    std::string body =
        protocol::upstream_body(body_text, document, plan.target, plan.provider, error);
    if (!error.empty()) {
        measured.error = error;
        co_return measured;
    }
    if (plan.null_removes_field && !plan.target.extra_body_json.empty()) {
        body = without_null_fields(std::move(body), plan.target.extra_body_json);
    }
    auto request = make_upstream_request(nullptr, plan.provider, plan.target, "/chat/completions",
                                         std::move(body), plan.credential, request_id);
    const auto start = Clock::now();
    CallResult result = co_await call_upstream(plan.pool, std::move(request), start + timeout);
    measured.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    measured.ttft_ms = measured.latency_ms;  // a non-streamed answer arrives at once
    if (result.ec) {
        measured.error = std::string(to_string(classify_upstream_error(result.ec)));
        co_return measured;
    }
    if (result.status != 200) {
        measured.error = fmt::format("status {}", result.status);
        co_return measured;
    }
    protocol::Answer answer =
        protocol::egress_for(plan.provider.kind)
            .answer(200, std::move(result.body), request_id, plan.target.model);
    if (answer.unusable) {
        measured.error = std::move(answer.problem);
        co_return measured;
    }
    measured.ok = true;
    measured.usage = answer.usage;
    measured.text = std::move(answer.body);
    co_return measured;
}

}  // namespace turnout::upstream
