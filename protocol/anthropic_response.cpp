#include "protocol/anthropic_response.hpp"

// What the answer translation leaves out, and why.
//
// Anthropic response fields not returned to the client:
// - thinking and redacted_thinking blocks (chat.completions has no reasoning field), server
//   tool blocks (server_tool_use, web_search_tool_result, ...), text citations.
// - stop_sequence (which sequence matched): OpenAI has no field for it.
// - usage.service_tier, usage.server_tool_use, usage.cache_creation (per-TTL breakdown);
//   usage.speed goes to the caller for the access log, not to the client.
// - model: the client sees the model name it asked for.
// - refusal: only as finish_reason "content_filter"; message.refusal stays absent.
// - streaming: see anthropic_stream.cpp.
// - error bodies: Anthropic's request_id (the gateway's x-request-id names the request).

#include <cstddef>
#include <string>
#include <vector>

#include "protocol/anthropic_completion.hpp"
#include "protocol/anthropic_json.hpp"

namespace turnout::protocol::anthropic {
namespace {

using namespace detail;

// Upstream text quoted in an error message is cut here.
constexpr std::size_t kMaxQuotedBytes = 300;

/// At most `limit` bytes of `text`, cut on a UTF-8 character boundary so the JSON stays valid.
std::string_view utf8_prefix(std::string_view text, std::size_t limit) {
    if (text.size() <= limit) return text;
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return text.substr(0, end);
}

struct ToolCall {
    std::string_view id;
    std::string_view name;
    std::string arguments;
};

struct Answer {
    std::string text;
    std::vector<ToolCall> tool_calls;
};

Answer collect_content(const Value& content) {
    Answer answer;
    for (const auto& block : content.GetArray()) {
        const auto type = string_member(block, "type");
        if (!type) continue;
        if (*type == "text") {
            answer.text += string_member(block, "text").value_or("");
        } else if (*type == "tool_use") {
            const Value* input = member(block, "input");
            answer.tool_calls.push_back(
                {string_member(block, "id").value_or(""), string_member(block, "name").value_or(""),
                 input != nullptr && input->IsObject() ? to_json(*input) : "{}"});
        }
    }
    return answer;
}

void write_message(JsonWriter& writer, const Answer& answer) {
    writer.Key("message");
    writer.StartObject();
    writer.Key("role");
    writer.String("assistant");
    writer.Key("content");
    // OpenAI's shape: null content beside tool calls, "" for an answer with nothing at all.
    if (answer.text.empty() && !answer.tool_calls.empty()) {
        writer.Null();
    } else {
        put(writer, answer.text);
    }
    if (!answer.tool_calls.empty()) {
        writer.Key("tool_calls");
        writer.StartArray();
        for (const auto& call : answer.tool_calls) {
            write_tool_call(writer, {std::nullopt, call.id, call.name, call.arguments});
        }
        writer.EndArray();
    }
    writer.EndObject();
}

}  // namespace

std::string_view finish_reason_for(std::string_view stop_reason) {
    if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
        return "length";
    }
    if (stop_reason == "tool_use") return "tool_calls";
    if (stop_reason == "refusal") return "content_filter";
    return "stop";  // end_turn, stop_sequence, pause_turn and anything newer
}

ResponseTranslation translate_response(std::string_view anthropic_body, std::string_view request_id,
                                       std::string_view model_for_client) {
    ResponseTranslation result;
    Document doc;
    if (!parse_untrusted(doc, anthropic_body) || !doc.IsObject()) {
        result.error = "the Anthropic answer is not a JSON object";
        return result;
    }
    const auto type = string_member(doc, "type");
    const Value* content = member(doc, "content");
    if ((type && *type != "message") || (content != nullptr && !content->IsArray())) {
        result.error = "the Anthropic answer is not a message";
        return result;
    }
    read_usage(member(doc, "usage"), result.usage, result.speed);
    const Answer answer = content != nullptr ? collect_content(*content) : Answer{};
    const std::string id = completion_id(string_member(doc, "id"), request_id);
    const std::string_view finish_reason =
        finish_reason_for(string_member(doc, "stop_reason").value_or(""));
    const auto write_choice = [&](JsonWriter& writer) {
        writer.StartObject();
        writer.Key("index");
        writer.Uint(0);
        write_message(writer, answer);
        writer.Key("logprobs");
        writer.Null();
        write_finish_reason(writer, finish_reason);
        writer.EndObject();
    };
    result.body = completion_json({id, "chat.completion", now_seconds(), model_for_client},
                                  write_choice, &result.usage);
    return result;
}

std::string translate_error(std::string_view anthropic_body, unsigned status) {
    Document doc;
    ErrorFields error;
    if (parse_untrusted(doc, anthropic_body)) {
        const Value* value = member(doc, "error");
        if (value != nullptr && value->IsString()) {  // some proxies in between answer this way
            error.message = view(*value);
        } else {
            error = error_fields(value);
        }
    }
    std::string text(error.message);
    if (text.empty()) {
        text = "the upstream answered HTTP " + std::to_string(status);
        const std::string_view quoted = utf8_prefix(anthropic_body, kMaxQuotedBytes);
        if (!is_blank(quoted)) text.append(": ").append(quoted);
    }
    const std::string code =
        error.type.empty() ? "http_" + std::to_string(status) : std::string(error.type);
    return error_body(text, openai_error_type(error.type, status), code);
}

}  // namespace turnout::protocol::anthropic
