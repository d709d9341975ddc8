#include "protocol/anthropic_stream.hpp"

// What the stream translation leaves out, and why (the fields of whole answers are listed in
// anthropic_response.cpp and apply here too):
// - thinking_delta, signature_delta, citations_delta: chat.completion.chunk has no field for
//   reasoning or citations.
// - the `event:` line is not read, the data's `type` is (Anthropic sends both, equal).

#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <variant>

#include "protocol/anthropic_completion.hpp"
#include "protocol/anthropic_json.hpp"
#include "protocol/sse.hpp"

namespace turnout::protocol::anthropic {
namespace {

using namespace detail;

// Key for stream blocks whose event carries no usable index.
constexpr std::uint64_t kNoIndex = std::numeric_limits<std::uint64_t>::max();

constexpr std::string_view kChunkObject = "chat.completion.chunk";

struct DeltaRole {};

struct DeltaText {
    std::string_view content;
};

struct DeltaToolCall {
    ToolCallEntry call;  // with an index; id and name only in a call's first chunk
};

void write_delta(JsonWriter& writer, std::monostate) { (void)writer; }

void write_delta(JsonWriter& writer, DeltaRole) {
    writer.Key("role");
    writer.String("assistant");
    writer.Key("content");
    writer.String("");
}

void write_delta(JsonWriter& writer, const DeltaText& delta) {
    writer.Key("content");
    put(writer, delta.content);
}

void write_delta(JsonWriter& writer, const DeltaToolCall& delta) {
    writer.Key("tool_calls");
    writer.StartArray();
    write_tool_call(writer, delta.call);
    writer.EndArray();
}

std::string sse_frame(std::string_view json) {
    std::string frame;
    frame.reserve(json.size() + 8);
    frame.append("data: ").append(json).append("\n\n");
    return frame;
}

template <typename Delta>
std::string chunk_frame(const CompletionHead& head, const Delta& delta,
                        std::string_view finish_reason = {}) {
    const auto write_choice = [&](JsonWriter& writer) {
        writer.StartObject();
        writer.Key("index");
        writer.Uint(0);
        writer.Key("delta");
        writer.StartObject();
        write_delta(writer, delta);
        writer.EndObject();
        write_finish_reason(writer, finish_reason);
        writer.EndObject();
    };
    return sse_frame(completion_json(head, write_choice, nullptr));
}

/// The last chunk when the client asked for usage: no choices, only `usage`.
std::string usage_frame(const CompletionHead& head, const Usage& usage) {
    const auto no_choices = [](JsonWriter&) {};
    return sse_frame(completion_json(head, no_choices, &usage));
}

DeltaToolCall tool_call_delta(std::size_t index, std::string_view arguments) {
    return {{index, std::nullopt, {}, arguments}};
}

std::uint64_t block_index(const Value& data) {
    const Value* index = member(data, "index");
    return index != nullptr && index->IsUint64() ? index->GetUint64() : kNoIndex;
}

}  // namespace

StreamTranslator::StreamTranslator(std::string request_id, std::string model_for_client,
                                   bool include_usage)
    : id_(completion_id(std::nullopt, request_id)),
      model_(std::move(model_for_client)),
      created_(now_seconds()),
      include_usage_(include_usage) {}

std::string StreamTranslator::on_event(std::string_view sse_event) {
    if (failed_ || finished_) return {};
    const std::string data = sse_event_data(sse_event);
    if (is_blank(data)) return {};  // a comment, a keep-alive, an event without data
    Document doc;
    if (!parse_untrusted(doc, data) || !doc.IsObject()) {
        return fail("the upstream sent a malformed stream event", "upstream_error",
                    "upstream_stream_failed");
    }
    const std::string_view type = string_member(doc, "type").value_or("");
    if (type == "message_start") return on_message_start(doc);
    if (type == "content_block_start") return on_block_start(doc);
    if (type == "content_block_delta") return on_block_delta(doc);
    if (type == "content_block_stop") return on_block_stop(doc);
    if (type == "message_delta") return on_message_delta(doc);
    if (type == "message_stop") return on_message_stop();
    if (type == "error") {
        const ErrorFields error = error_fields(member(doc, "error"));
        return fail(error.message.empty() ? "the upstream stream failed" : error.message,
                    openai_error_type(error.type, 0),
                    error.type.empty() ? "upstream_stream_failed" : error.type);
    }
    return {};  // ping, and event types newer than this code
}

std::string StreamTranslator::start_once() {
    if (started_) return {};
    started_ = true;
    return chunk_frame({id_, kChunkObject, created_, model_}, DeltaRole{});
}

std::string StreamTranslator::on_message_start(const rapidjson::Value& data) {
    const Value* message = member(data, "message");
    const auto id = string_member(message, "id");
    // Chunks already sent keep their id: a stream must not change ids midway.
    if (!started_ && id && !id->empty()) id_ = completion_id(id, {});
    if (message != nullptr) read_usage(member(*message, "usage"), usage_, speed_);
    return start_once();
}

std::string StreamTranslator::on_block_start(const rapidjson::Value& data) {
    std::string out = start_once();
    const Value* block = member(data, "content_block");
    const auto type = string_member(block, "type");
    const CompletionHead head{id_, kChunkObject, created_, model_};
    if (type == "text") {
        const std::string_view text = string_member(*block, "text").value_or("");
        if (!text.empty()) {
            text_ += text;
            out += chunk_frame(head, DeltaText{text});
        }
    } else if (type == "tool_use") {
        ToolBlock tool{tool_count_++, false};
        // Anthropic starts tool blocks with input {}; a non-empty one is the whole input.
        const Value* input = member(*block, "input");
        std::string arguments;
        if (input != nullptr && input->IsObject() && !input->ObjectEmpty()) {
            arguments = to_json(*input);
            tool.has_arguments = true;
        }
        tool_blocks_[block_index(data)] = tool;
        out += chunk_frame(
            head, DeltaToolCall{{tool.openai_index, string_member(*block, "id").value_or(""),
                                 string_member(*block, "name").value_or(""), arguments}});
    }
    return out;
}

std::string StreamTranslator::on_block_delta(const rapidjson::Value& data) {
    const Value* delta = member(data, "delta");
    const auto type = string_member(delta, "type");
    const CompletionHead head{id_, kChunkObject, created_, model_};
    if (type == "text_delta") {
        const std::string_view text = string_member(*delta, "text").value_or("");
        if (text.empty()) return {};
        text_ += text;
        std::string out = start_once();
        return out + chunk_frame(head, DeltaText{text});
    }
    if (type == "input_json_delta") {
        const auto it = tool_blocks_.find(block_index(data));
        const std::string_view partial = string_member(*delta, "partial_json").value_or("");
        // Without its content_block_start there is no tool call to attach the text to.
        if (it == tool_blocks_.end() || partial.empty()) return {};
        it->second.has_arguments = true;
        return chunk_frame(head, tool_call_delta(it->second.openai_index, partial));
    }
    return {};  // thinking_delta, signature_delta, citations_delta
}

std::string StreamTranslator::on_block_stop(const rapidjson::Value& data) {
    const auto it = tool_blocks_.find(block_index(data));
    if (it == tool_blocks_.end() || it->second.has_arguments) return {};
    // A tool without parameters streams no input: "{}" keeps clients' JSON.parse working and
    // matches the non-streaming translation.
    it->second.has_arguments = true;
    return chunk_frame({id_, kChunkObject, created_, model_},
                       tool_call_delta(it->second.openai_index, "{}"));
}

std::string StreamTranslator::on_message_delta(const rapidjson::Value& data) {
    read_usage(member(data, "usage"), usage_, speed_);
    const auto stop_reason = string_member(member(data, "delta"), "stop_reason");
    if (!stop_reason || finish_sent_) return {};
    finish_reason_ = finish_reason_for(*stop_reason);
    finish_sent_ = true;
    std::string out = start_once();
    return out +
           chunk_frame({id_, kChunkObject, created_, model_}, std::monostate{}, finish_reason_);
}

std::string StreamTranslator::on_message_stop() {
    std::string out = start_once();
    const CompletionHead head{id_, kChunkObject, created_, model_};
    if (!finish_sent_) {  // every OpenAI stream ends its choice with a finish_reason
        if (finish_reason_.empty()) finish_reason_ = "stop";
        finish_sent_ = true;
        out += chunk_frame(head, std::monostate{}, finish_reason_);
    }
    if (include_usage_) out += usage_frame(head, usage_);
    finished_ = true;
    return out + "data: [DONE]\n\n";
}

std::string StreamTranslator::fail(std::string_view message, std::string_view type,
                                   std::string_view code) {
    failed_ = true;
    return sse_frame(error_body(message, type, code));
}

}  // namespace turnout::protocol::anthropic
