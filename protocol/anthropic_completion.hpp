#pragma once
/// Internal to the Anthropic translation, not part of its interface: the pieces of OpenAI
/// answers that both the whole-response translation (anthropic_response.cpp) and the stream
/// translation (anthropic_stream.cpp) write: the completion envelope, usage, tool calls, errors.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/anthropic_json.hpp"
#include "protocol/anthropic_response.hpp"

namespace turnout::protocol::anthropic::detail {

/// What every chat.completion and chat.completion.chunk starts with.
struct CompletionHead {
    std::string_view id;
    std::string_view object;
    std::int64_t created;
    std::string_view model;
};

/// "chatcmpl-" + Anthropic's message id, or + `request_id` when there is none.
std::string completion_id(std::optional<std::string_view> anthropic_id,
                          std::string_view request_id);

/// Unix time in seconds, for `created`.
std::int64_t now_seconds();

/// Reads Anthropic's `usage` object into `out` (and `usage.speed` into `speed`); only fields
/// present overwrite.
void read_usage(const Value* usage, Usage& out, std::optional<std::string>& speed);

/// The OpenAI `usage` member.
void write_usage(JsonWriter& writer, const Usage& usage);

/// A completion object: the head, the `choices` array that `write_choices` fills, and `usage`
/// when not null.
template <typename WriteChoices>
std::string completion_json(const CompletionHead& head, WriteChoices&& write_choices,
                            const Usage* usage) {
    return write_json([&](JsonWriter& writer) {
        writer.StartObject();
        writer.Key("id");
        put(writer, head.id);
        writer.Key("object");
        put(writer, head.object);
        writer.Key("created");
        writer.Int64(head.created);
        writer.Key("model");
        put(writer, head.model);
        writer.Key("choices");
        writer.StartArray();
        write_choices(writer);
        writer.EndArray();
        if (usage != nullptr) write_usage(writer, *usage);
        writer.EndObject();
    });
}

/// The `finish_reason` member: null while empty.
void write_finish_reason(JsonWriter& writer, std::string_view finish_reason);

/// One element of OpenAI's `tool_calls`. Stream chunks number the calls (`index`) and name
/// them (`id`, `type`, `function.name`) only in a call's first chunk; whole answers carry no
/// index and name every call.
struct ToolCallEntry {
    std::optional<std::size_t> index;
    std::optional<std::string_view> id;
    std::string_view name;
    std::string_view arguments;
};

void write_tool_call(JsonWriter& writer, const ToolCallEntry& call);

/// `type` and `message` of an Anthropic error object; "" for what is missing or mistyped.
struct ErrorFields {
    std::string_view type;
    std::string_view message;
};

ErrorFields error_fields(const Value* error);

/// OpenAI's error `type` for an Anthropic error type, else for the HTTP status.
std::string_view openai_error_type(std::string_view anthropic_type, unsigned status);

/// `{"error":{"message","type","code"}}`.
std::string error_body(std::string_view message, std::string_view type, std::string_view code);

}  // namespace turnout::protocol::anthropic::detail
