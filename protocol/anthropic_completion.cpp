#include "protocol/anthropic_completion.hpp"

#include <chrono>
#include <utility>

namespace turnout::protocol::anthropic::detail {

std::string completion_id(std::optional<std::string_view> anthropic_id,
                          std::string_view request_id) {
    const std::string_view id = anthropic_id && !anthropic_id->empty() ? *anthropic_id : request_id;
    return "chatcmpl-" + std::string(id);
}

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void read_usage(const Value* usage, Usage& out, std::optional<std::string>& speed) {
    if (usage == nullptr || !usage->IsObject()) return;
    // Only fields present overwrite: a stream's message_delta repeats some counts, not all.
    const auto read = [&](const char* name, std::uint64_t& field) {
        const Value* value = member(*usage, name);
        if (value != nullptr && value->IsUint64()) field = value->GetUint64();
    };
    read("input_tokens", out.input_tokens);
    read("output_tokens", out.output_tokens);
    read("cache_read_input_tokens", out.cache_read_input_tokens);
    read("cache_creation_input_tokens", out.cache_creation_input_tokens);
    if (const auto value = string_member(*usage, "speed")) speed = std::string(*value);
}

void write_usage(JsonWriter& writer, const Usage& usage) {
    writer.Key("usage");
    writer.StartObject();
    writer.Key("prompt_tokens");
    writer.Uint64(usage.prompt_tokens());
    writer.Key("completion_tokens");
    writer.Uint64(usage.output_tokens);
    writer.Key("total_tokens");
    writer.Uint64(usage.prompt_tokens() + usage.output_tokens);
    writer.Key("prompt_tokens_details");
    writer.StartObject();
    writer.Key("cached_tokens");
    writer.Uint64(usage.cache_read_input_tokens);
    writer.EndObject();
    writer.EndObject();
}

void write_finish_reason(JsonWriter& writer, std::string_view finish_reason) {
    writer.Key("finish_reason");
    if (finish_reason.empty()) {
        writer.Null();
    } else {
        put(writer, finish_reason);
    }
}

void write_tool_call(JsonWriter& writer, const ToolCallEntry& call) {
    writer.StartObject();
    if (call.index) {
        writer.Key("index");
        writer.Uint64(*call.index);
    }
    if (call.id) {
        writer.Key("id");
        put(writer, *call.id);
        writer.Key("type");
        writer.String("function");
    }
    writer.Key("function");
    writer.StartObject();
    if (call.id) {
        writer.Key("name");
        put(writer, call.name);
    }
    writer.Key("arguments");
    put(writer, call.arguments);
    writer.EndObject();
    writer.EndObject();
}

ErrorFields error_fields(const Value* error) {
    return {string_member(error, "type").value_or(""),
            string_member(error, "message").value_or("")};
}

std::string_view openai_error_type(std::string_view anthropic_type, unsigned status) {
    static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
        {"invalid_request_error", "invalid_request_error"},
        {"authentication_error", "authentication_error"},
        {"permission_error", "permission_error"},
        {"not_found_error", "invalid_request_error"},  // OpenAI's 404s are request errors
        {"request_too_large", "invalid_request_error"},
        {"rate_limit_error", "rate_limit_error"},
        {"billing_error", "insufficient_quota"},
        {"api_error", "server_error"},
        {"overloaded_error", "server_error"},
        {"timeout_error", "server_error"},
    };
    for (const auto& [from, to] : kTypes) {
        if (from == anthropic_type) return to;
    }
    if (status == 401) return "authentication_error";
    if (status == 403) return "permission_error";
    if (status == 429) return "rate_limit_error";
    if (status >= 500) return "server_error";
    if (status >= 400) return "invalid_request_error";
    return "upstream_error";
}

std::string error_body(std::string_view message, std::string_view type, std::string_view code) {
    return write_json([&](JsonWriter& writer) {
        writer.StartObject();
        writer.Key("error");
        writer.StartObject();
        writer.Key("message");
        put(writer, message);
        writer.Key("type");
        put(writer, type);
        writer.Key("code");
        put(writer, code);
        writer.EndObject();
        writer.EndObject();
    });
}

}  // namespace turnout::protocol::anthropic::detail
