#include "gateway/anthropic.hpp"

// What the translation leaves out, and why.
//
// OpenAI request fields not sent to Anthropic:
// - n: only 1. n > 1 is a 400: the Messages API returns one answer, and fewer choices than
//   asked for would break clients silently.
// - logprobs, top_logprobs, logit_bias: Anthropic exposes no token probabilities or biases.
// - seed, frequency_penalty, presence_penalty: no equivalent sampling controls.
// - response_format (json_object, json_schema): no equivalent in the 2023-06-01 Messages API;
//   emulating it with a forced tool would change the answer's shape. The model answers text.
// - reasoning_effort, verbosity: would map to Anthropic's `thinking`, which adds thinking
//   blocks and constrains temperature; a provider can set it through its extra body.
// - modalities, audio, prediction, web_search_options: no audio output, predicted outputs or
//   OpenAI-hosted tools on Anthropic.
// - store, metadata, service_tier, prompt_cache_key, safety_identifier: OpenAI platform
//   features (Anthropic's service_tier takes other values).
// - functions, function_call and the `function` role: deprecated; `tools` is translated.
// - stream_options: not an Anthropic field; include_usage is read by stream_include_usage().
// - tools[].function.strict: no strict-schema flag in the 2023-06-01 API. Tool types other
//   than `function` are a 400.
// - messages[].name: Anthropic has no participant names.
// - image_url.detail: Anthropic chooses the resolution itself.
// - content parts other than text, image_url (user and tool messages) and refusal (assistant):
//   input_audio and file are a 400 rather than dropped, since losing input changes the answer.
// - temperature is passed unchanged: OpenAI allows 0-2, Anthropic 0-1, so values above 1 get
//   Anthropic's 400; rescaling would silently change sampling.
// Reshaped rather than dropped:
// - system and developer messages anywhere in the conversation become the top-level `system`,
//   in order, joined by blank lines: Anthropic has no system role inside `messages`.
// - empty text parts and messages left without content are dropped (Anthropic rejects empty
//   text blocks); consecutive same-role messages are merged (Anthropic requires alternation),
//   with tool_result blocks first in a merged user message; a message of one text block is
//   sent as a plain string.
// - parallel_tool_calls: false becomes tool_choice.disable_parallel_tool_use.
// - top_k (a non-OpenAI extension some clients send) is passed through.
// Anthropic request fields never produced: thinking, cache_control, container, mcp_servers,
// service_tier; a provider's extra body can add top-level ones (fast mode's `speed`).
//
// Anthropic response fields not returned to the client:
// - thinking and redacted_thinking blocks (chat.completions has no reasoning field), server
//   tool blocks (server_tool_use, web_search_tool_result, ...), text citations.
// - stop_sequence (which sequence matched): OpenAI has no field for it.
// - usage.service_tier, usage.server_tool_use, usage.cache_creation (per-TTL breakdown);
//   usage.speed goes to the caller for the access log, not to the client.
// - model: the client sees the model name it asked for.
// - refusal: only as finish_reason "content_filter"; message.refusal stays absent.
// - streaming: thinking_delta, signature_delta, citations_delta; the `event:` line is not
//   read, the data's `type` is (Anthropic sends both, equal).
// - error bodies: Anthropic's request_id (the gateway's x-request-id names the request).

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "gateway/sse.hpp"
#include "routing/json_depth.hpp"
#include "routing/json_input.hpp"

namespace turnout::gateway::anthropic {
namespace {

using rapidjson::Document;
using rapidjson::kArrayType;
using rapidjson::kObjectType;
using rapidjson::SizeType;
using rapidjson::Value;
using Allocator = Document::AllocatorType;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// RapidJSON copies, compares and serialises recursively: deeper input could overflow the stack.
// Real requests (JSON schemas included) nest a few dozen levels at most.
constexpr int kMaxDepth = routing::kMaxJsonDepth;
// Iterative parsing, so that the depth check itself sees a parsed document and never a crash.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag;
// Upstream text quoted in an error message is cut here.
constexpr std::size_t kMaxQuotedBytes = 300;
// Key for stream blocks whose event carries no usable index.
constexpr std::uint64_t kNoIndex = std::numeric_limits<std::uint64_t>::max();

// ---------------------------------------------------------------------------------------------
// JSON helpers


/// Upstream answers and already-checked client bodies: depth bounded, duplicate keys tolerated
/// (the session refuses them in client requests before any translation).
bool parse_untrusted(Document& doc, std::string_view text) {
    constexpr routing::JsonInputOptions kOptions{.max_depth = kMaxDepth,
                                                 .reject_duplicate_keys = false};
    return static_cast<bool>(routing::parse_json_input(text, doc, kOptions));
}

std::string_view view(const Value& string) {
    return {string.GetString(), string.GetStringLength()};
}

/// The member `name` of `object`; nullptr when `object` is no object or lacks it.
const Value* member(const Value& object, const char* name) {
    if (!object.IsObject()) return nullptr;
    const auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
}

std::optional<std::string_view> string_member(const Value& object, const char* name) {
    const Value* value = member(object, name);
    if (value == nullptr || !value->IsString()) return std::nullopt;
    return view(*value);
}

bool is_absent(const Value* value) { return value == nullptr || value->IsNull(); }

Value string_value(std::string_view text, Allocator& alloc) {
    return Value(text.data(), static_cast<SizeType>(text.size()), alloc);
}

void put(JsonWriter& writer, std::string_view text) {
    writer.String(text.data(), static_cast<SizeType>(text.size()));
}

std::string to_json(const Value& value) {
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    value.Accept(writer);
    return {buffer.GetString(), buffer.GetSize()};
}

bool is_blank(std::string_view text) {
    return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(text[i]) != lower(prefix[i])) return false;
    }
    return true;
}

/// At most `limit` bytes of `text`, cut on a UTF-8 character boundary so the JSON stays valid.
std::string_view utf8_prefix(std::string_view text, std::size_t limit) {
    if (text.size() <= limit) return text;
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return text.substr(0, end);
}

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// ---------------------------------------------------------------------------------------------
// Shared by responses and streams

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

/// OpenAI's error `type` for an Anthropic error type, else for the HTTP status.
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
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
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
    return {buffer.GetString(), buffer.GetSize()};
}

std::string sse_frame(std::string_view json) {
    std::string frame;
    frame.reserve(json.size() + 8);
    frame.append("data: ").append(json).append("\n\n");
    return frame;
}

// ---------------------------------------------------------------------------------------------
// Request: OpenAI chat.completions -> Anthropic Messages

/// Which content parts a message may carry.
enum class Parts { text_only, assistant, with_images };

struct DataUrl {
    std::string_view media_type;
    std::string_view data;
};

/// `data:<media type>[;params];base64,<data>`; nullopt for any other shape.
std::optional<DataUrl> parse_data_url(std::string_view url) {
    constexpr std::string_view kBase64 = ";base64";
    url.remove_prefix(std::string_view("data:").size());
    const auto comma = url.find(',');
    if (comma == std::string_view::npos) return std::nullopt;
    std::string_view meta = url.substr(0, comma);
    const std::string_view data = url.substr(comma + 1);
    if (meta.size() < kBase64.size() ||
        !starts_with_nocase(meta.substr(meta.size() - kBase64.size()), kBase64)) {
        return std::nullopt;
    }
    meta.remove_suffix(kBase64.size());
    const std::string_view media_type = meta.substr(0, meta.find(';'));
    if (media_type.empty() || data.empty()) return std::nullopt;
    return DataUrl{media_type, data};
}

std::string indexed(const std::string& path, SizeType index) {
    return path + "[" + std::to_string(index) + "]";
}

/// Builds one Anthropic request; the first failure wins and stops the translation.
class RequestBuilder {
  public:
    RequestTranslation build(const Value& request, std::string_view target_model,
                             std::uint32_t default_max_tokens, std::string_view extra_body);

  private:
    Allocator& alloc() { return out_.GetAllocator(); }
    bool fail(std::string message) {
        if (error_.empty()) error_ = std::move(message);
        return false;
    }

    bool check_n(const Value& request);
    bool add_max_tokens(const Value& request, std::uint32_t default_max_tokens);
    bool convert_messages(const Value& request, Value& messages);
    bool convert_message(const Value& message, const std::string& path, Value& messages);
    bool add_system(const Value& message, const std::string& path);
    bool content_blocks(const Value* content, const std::string& path, Parts parts, Value& blocks);
    bool content_part(const Value& part, const std::string& path, Parts parts, Value& blocks);
    bool image_block(const Value& part, const std::string& path, Value& blocks);
    void text_block(std::string_view text, Value& blocks);
    bool tool_use_blocks(const Value& message, const std::string& path, Value& blocks);
    bool tool_use_block(const Value& call, const std::string& path, Value& blocks);
    bool tool_input(const Value* arguments, const std::string& path, Value& input);
    bool tool_result_block(const Value& message, const std::string& path, Value& blocks);
    void append_turn(const char* role, Value& blocks, Value& messages);
    void finish_turn(Value& turn);
    bool add_tools(const Value& request);
    bool convert_tool(const Value& tool, const std::string& path, Value& tools);
    bool add_tool_choice(const Value& request);
    bool tool_choice_value(const Value& choice, Value& out);
    bool add_stop(const Value& request);
    bool copy_number(const Value& request, const char* name, bool integer);
    bool add_user(const Value& request);
    bool add_stream(const Value& request);
    bool merge_extra(std::string_view extra_body);
    void merge_object(Value& into, Value& from);

    Document out_{kObjectType};
    std::string error_;
    std::string system_;
    bool has_tools_ = false;
};

RequestTranslation RequestBuilder::build(const Value& request, std::string_view target_model,
                                         std::uint32_t default_max_tokens,
                                         std::string_view extra_body) {
    if (!request.IsObject()) return {{}, "the request body must be a JSON object"};
    if (!routing::json_within_depth(request, kMaxDepth)) {
        return {{}, "the request is nested too deeply"};
    }
    Value messages(kArrayType);
    if (!check_n(request) || !convert_messages(request, messages)) return {{}, error_};
    out_.AddMember("model", string_value(target_model, alloc()), alloc());
    if (!add_max_tokens(request, default_max_tokens)) return {{}, error_};
    if (!system_.empty()) out_.AddMember("system", string_value(system_, alloc()), alloc());
    out_.AddMember("messages", messages, alloc());
    const bool rest_ok = add_tools(request) && add_tool_choice(request) && add_stop(request) &&
                         copy_number(request, "temperature", false) &&
                         copy_number(request, "top_p", false) &&
                         copy_number(request, "top_k", true) && add_user(request) &&
                         add_stream(request) && merge_extra(extra_body);
    if (!rest_ok) return {{}, error_};
    return {to_json(out_), {}};
}

bool RequestBuilder::check_n(const Value& request) {
    const Value* n = member(request, "n");
    if (is_absent(n)) return true;
    if (!n->IsUint64() || n->GetUint64() == 0) return fail("n: must be a positive integer");
    if (n->GetUint64() != 1) return fail("n: Anthropic models return one choice; n must be 1");
    return true;
}

bool RequestBuilder::add_max_tokens(const Value& request, std::uint32_t default_max_tokens) {
    // max_completion_tokens replaced max_tokens in OpenAI's API, so it wins when both are set.
    const char* name = "max_completion_tokens";
    const Value* value = member(request, name);
    if (is_absent(value)) {
        name = "max_tokens";
        value = member(request, name);
    }
    if (is_absent(value)) {
        out_.AddMember("max_tokens", Value(default_max_tokens), alloc());
        return true;
    }
    if (!value->IsUint64() || value->GetUint64() == 0) {
        return fail(std::string(name) + ": must be a positive integer");
    }
    out_.AddMember("max_tokens", Value(value->GetUint64()), alloc());
    return true;
}

bool RequestBuilder::convert_messages(const Value& request, Value& messages) {
    const Value* list = member(request, "messages");
    if (list == nullptr || !list->IsArray()) return fail("messages: must be an array");
    for (SizeType i = 0; i < list->Size(); ++i) {
        if (!convert_message((*list)[i], indexed("messages", i), messages)) return false;
    }
    if (messages.Empty()) {
        return fail("messages: at least one user or assistant message with content is needed");
    }
    for (auto& turn : messages.GetArray()) finish_turn(turn);
    return true;
}

bool RequestBuilder::convert_message(const Value& message, const std::string& path,
                                     Value& messages) {
    if (!message.IsObject()) return fail(path + ": must be an object");
    const auto role = string_member(message, "role");
    if (!role) return fail(path + ".role: must be a string");
    Value blocks(kArrayType);
    const Value* content = member(message, "content");
    if (*role == "system" || *role == "developer") return add_system(message, path);
    if (*role == "user") {
        if (!content_blocks(content, path + ".content", Parts::with_images, blocks)) return false;
        append_turn("user", blocks, messages);
        return true;
    }
    if (*role == "assistant") {
        if (!content_blocks(content, path + ".content", Parts::assistant, blocks) ||
            !tool_use_blocks(message, path, blocks)) {
            return false;
        }
        append_turn("assistant", blocks, messages);
        return true;
    }
    if (*role == "tool") {
        if (!tool_result_block(message, path, blocks)) return false;
        append_turn("user", blocks, messages);
        return true;
    }
    return fail(path + ".role: unsupported role '" + std::string(*role) + "'");
}

bool RequestBuilder::add_system(const Value& message, const std::string& path) {
    Value blocks(kArrayType);
    if (!content_blocks(member(message, "content"), path + ".content", Parts::text_only, blocks)) {
        return false;
    }
    for (const auto& block : blocks.GetArray()) {
        if (!system_.empty()) system_ += "\n\n";
        system_ += view(block["text"]);
    }
    return true;
}

bool RequestBuilder::content_blocks(const Value* content, const std::string& path, Parts parts,
                                    Value& blocks) {
    if (is_absent(content)) return true;
    if (content->IsString()) {
        text_block(view(*content), blocks);
        return true;
    }
    if (!content->IsArray()) return fail(path + ": must be a string or an array of parts");
    for (SizeType i = 0; i < content->Size(); ++i) {
        if (!content_part((*content)[i], indexed(path, i), parts, blocks)) return false;
    }
    return true;
}

bool RequestBuilder::content_part(const Value& part, const std::string& path, Parts parts,
                                  Value& blocks) {
    const auto type = string_member(part, "type");
    if (!type) return fail(path + ".type: must be a string");
    // An assistant's refusal part is text it said; keeping it keeps the conversation intact.
    const char* text_field = *type == "text"                                   ? "text"
                             : *type == "refusal" && parts == Parts::assistant ? "refusal"
                                                                               : nullptr;
    if (text_field != nullptr) {
        const auto text = string_member(part, text_field);
        if (!text) return fail(path + "." + text_field + ": must be a string");
        text_block(*text, blocks);
        return true;
    }
    if (*type == "image_url" && parts == Parts::with_images) return image_block(part, path, blocks);
    return fail(path + ".type: content part '" + std::string(*type) +
                "' is not supported in this message");
}

bool RequestBuilder::image_block(const Value& part, const std::string& path, Value& blocks) {
    const Value* image = member(part, "image_url");
    // The object form is OpenAI's; a bare string is a common client shortcut.
    const auto url = image != nullptr && image->IsString() ? std::optional(view(*image))
                     : image != nullptr                    ? string_member(*image, "url")
                                                           : std::nullopt;
    if (!url) return fail(path + ".image_url.url: must be a string");
    Value source(kObjectType);
    if (starts_with_nocase(*url, "data:")) {
        const auto data_url = parse_data_url(*url);
        if (!data_url) {
            return fail(path + ".image_url.url: expected data:<media type>;base64,<data>");
        }
        source.AddMember("type", "base64", alloc());
        source.AddMember("media_type", string_value(data_url->media_type, alloc()), alloc());
        source.AddMember("data", string_value(data_url->data, alloc()), alloc());
    } else if (starts_with_nocase(*url, "https://") || starts_with_nocase(*url, "http://")) {
        source.AddMember("type", "url", alloc());
        source.AddMember("url", string_value(*url, alloc()), alloc());
    } else {
        return fail(path + ".image_url.url: must be an https URL or a base64 data URL");
    }
    Value block(kObjectType);
    block.AddMember("type", "image", alloc());
    block.AddMember("source", source, alloc());
    blocks.PushBack(block, alloc());
    return true;
}

void RequestBuilder::text_block(std::string_view text, Value& blocks) {
    if (text.empty()) return;  // Anthropic rejects empty text blocks
    Value block(kObjectType);
    block.AddMember("type", "text", alloc());
    block.AddMember("text", string_value(text, alloc()), alloc());
    blocks.PushBack(block, alloc());
}

bool RequestBuilder::tool_use_blocks(const Value& message, const std::string& path, Value& blocks) {
    const Value* calls = member(message, "tool_calls");
    if (is_absent(calls)) return true;
    if (!calls->IsArray()) return fail(path + ".tool_calls: must be an array");
    for (SizeType i = 0; i < calls->Size(); ++i) {
        if (!tool_use_block((*calls)[i], indexed(path + ".tool_calls", i), blocks)) return false;
    }
    return true;
}

bool RequestBuilder::tool_use_block(const Value& call, const std::string& path, Value& blocks) {
    if (!call.IsObject()) return fail(path + ": must be an object");
    const auto type = string_member(call, "type");
    if (type && *type != "function") return fail(path + ".type: must be 'function'");
    const auto id = string_member(call, "id");
    if (!id || id->empty()) return fail(path + ".id: must be a non-empty string");
    const Value* function = member(call, "function");
    const auto name = function != nullptr ? string_member(*function, "name") : std::nullopt;
    if (!name || name->empty()) return fail(path + ".function.name: must be a non-empty string");
    Value input;
    if (!tool_input(member(*function, "arguments"), path + ".function.arguments", input)) {
        return false;
    }
    Value block(kObjectType);
    block.AddMember("type", "tool_use", alloc());
    block.AddMember("id", string_value(*id, alloc()), alloc());
    block.AddMember("name", string_value(*name, alloc()), alloc());
    block.AddMember("input", input, alloc());
    blocks.PushBack(block, alloc());
    return true;
}

bool RequestBuilder::tool_input(const Value* arguments, const std::string& path, Value& input) {
    // Clients send "" or nothing for tools without parameters; Anthropic wants an object.
    if (is_absent(arguments) || (arguments->IsString() && is_blank(view(*arguments)))) {
        input.SetObject();
        return true;
    }
    if (arguments->IsObject()) {  // some clients send the object instead of its JSON text
        input.CopyFrom(*arguments, alloc());
        return true;
    }
    if (!arguments->IsString()) return fail(path + ": must be a string of JSON");
    // Parsed straight into the output's allocator, so the values outlive `parsed`.
    Document parsed(&alloc());
    parsed.Parse<kParseFlags>(arguments->GetString(), arguments->GetStringLength());
    if (parsed.HasParseError()) {
        return fail(path + ": invalid JSON (" +
                    rapidjson::GetParseError_En(parsed.GetParseError()) + " at offset " +
                    std::to_string(parsed.GetErrorOffset()) + ")");
    }
    if (!routing::json_within_depth(parsed, kMaxDepth)) {
        return fail(path + ": nested too deeply");
    }
    if (!parsed.IsObject()) return fail(path + ": must encode a JSON object");
    input.Swap(parsed);
    return true;
}

bool RequestBuilder::tool_result_block(const Value& message, const std::string& path,
                                       Value& blocks) {
    const auto id = string_member(message, "tool_call_id");
    if (!id || id->empty()) return fail(path + ".tool_call_id: must be a non-empty string");
    Value block(kObjectType);
    block.AddMember("type", "tool_result", alloc());
    block.AddMember("tool_use_id", string_value(*id, alloc()), alloc());
    const Value* content = member(message, "content");
    if (content != nullptr && content->IsString()) {
        // Anthropic's content is optional, and an empty text would be rejected.
        if (content->GetStringLength() > 0) {
            block.AddMember("content", string_value(view(*content), alloc()), alloc());
        }
    } else {
        Value parts(kArrayType);
        if (!content_blocks(content, path + ".content", Parts::with_images, parts)) return false;
        if (!parts.Empty()) block.AddMember("content", parts, alloc());
    }
    blocks.PushBack(block, alloc());
    return true;
}

void RequestBuilder::append_turn(const char* role, Value& blocks, Value& messages) {
    if (blocks.Empty()) return;
    if (!messages.Empty()) {
        Value& last = messages[messages.Size() - 1];
        // Anthropic requires alternating roles: same-role neighbours become one turn.
        if (view(last["role"]) == role) {
            for (auto& block : blocks.GetArray()) last["content"].PushBack(block, alloc());
            return;
        }
    }
    Value turn(kObjectType);
    turn.AddMember("role", rapidjson::StringRef(role), alloc());
    turn.AddMember("content", blocks, alloc());
    messages.PushBack(turn, alloc());
}

void RequestBuilder::finish_turn(Value& turn) {
    Value& content = turn["content"];
    if (view(turn["role"]) == "user") {
        // Anthropic wants tool results before anything else in the user turn that answers.
        Value ordered(kArrayType);
        for (auto& block : content.GetArray()) {
            if (view(block["type"]) == "tool_result") ordered.PushBack(block, alloc());
        }
        for (auto& block : content.GetArray()) {
            if (!block.IsNull()) ordered.PushBack(block, alloc());
        }
        content = ordered;
    }
    if (content.Size() == 1 && view(content[0]["type"]) == "text") {
        Value text;
        text.Swap(content[0]["text"]);
        content = text;
    }
}

bool RequestBuilder::add_tools(const Value& request) {
    const Value* tools = member(request, "tools");
    if (is_absent(tools)) return true;
    if (!tools->IsArray()) return fail("tools: must be an array");
    Value converted(kArrayType);
    for (SizeType i = 0; i < tools->Size(); ++i) {
        if (!convert_tool((*tools)[i], indexed("tools", i), converted)) return false;
    }
    has_tools_ = !converted.Empty();
    if (has_tools_) out_.AddMember("tools", converted, alloc());
    return true;
}

bool RequestBuilder::convert_tool(const Value& tool, const std::string& path, Value& tools) {
    const auto type = string_member(tool, "type");
    if (!type || *type != "function") return fail(path + ".type: only 'function' is supported");
    const Value* function = member(tool, "function");
    const auto name = function != nullptr ? string_member(*function, "name") : std::nullopt;
    if (!name || name->empty()) return fail(path + ".function.name: must be a non-empty string");
    Value out(kObjectType);
    out.AddMember("name", string_value(*name, alloc()), alloc());
    const Value* description = member(*function, "description");
    if (!is_absent(description) && !description->IsString()) {
        return fail(path + ".function.description: must be a string");
    }
    if (!is_absent(description) && description->GetStringLength() > 0) {
        out.AddMember("description", string_value(view(*description), alloc()), alloc());
    }
    const Value* parameters = member(*function, "parameters");
    Value schema(kObjectType);
    if (!is_absent(parameters)) {
        if (!parameters->IsObject()) return fail(path + ".function.parameters: must be an object");
        schema.CopyFrom(*parameters, alloc());
    }
    // OpenAI accepts a missing or type-less schema; Anthropic requires type "object".
    if (!schema.HasMember("type")) schema.AddMember("type", "object", alloc());
    if (is_absent(parameters)) schema.AddMember("properties", Value(kObjectType), alloc());
    out.AddMember("input_schema", schema, alloc());
    tools.PushBack(out, alloc());
    return true;
}

bool RequestBuilder::add_tool_choice(const Value& request) {
    const Value* choice = member(request, "tool_choice");
    const Value* parallel = member(request, "parallel_tool_calls");
    if (!is_absent(parallel) && !parallel->IsBool()) {
        return fail("parallel_tool_calls: must be a boolean");
    }
    const bool no_parallel = !is_absent(parallel) && !parallel->GetBool();
    Value out(kObjectType);
    if (!is_absent(choice)) {
        if (!tool_choice_value(*choice, out)) return false;
    } else if (no_parallel) {
        out.AddMember("type", "auto", alloc());
    }
    // Anthropic rejects tool_choice without tools.
    if (!has_tools_ || out.ObjectEmpty()) return true;
    if (no_parallel && view(out["type"]) != "none") {
        out.AddMember("disable_parallel_tool_use", true, alloc());
    }
    out_.AddMember("tool_choice", out, alloc());
    return true;
}

bool RequestBuilder::tool_choice_value(const Value& choice, Value& out) {
    if (choice.IsString()) {
        const std::string_view mode = view(choice);
        const char* type = mode == "auto"       ? "auto"
                           : mode == "required" ? "any"
                           : mode == "none"     ? "none"
                                                : nullptr;
        if (type == nullptr) return fail("tool_choice: must be 'auto', 'required' or 'none'");
        out.AddMember("type", rapidjson::StringRef(type), alloc());
        return true;
    }
    const auto type = string_member(choice, "type");
    const Value* function = member(choice, "function");
    const auto name = function != nullptr ? string_member(*function, "name") : std::nullopt;
    if (!type || *type != "function" || !name || name->empty()) {
        return fail("tool_choice: expected {\"type\":\"function\",\"function\":{\"name\":...}}");
    }
    out.AddMember("type", "tool", alloc());
    out.AddMember("name", string_value(*name, alloc()), alloc());
    return true;
}

bool RequestBuilder::add_stop(const Value& request) {
    const Value* stop = member(request, "stop");
    if (is_absent(stop)) return true;
    Value sequences(kArrayType);
    // Anthropic rejects empty stop sequences; OpenAI ignores them.
    const auto add = [&](const Value& sequence) {
        if (sequence.GetStringLength() > 0) {
            sequences.PushBack(string_value(view(sequence), alloc()), alloc());
        }
    };
    if (stop->IsString()) {
        add(*stop);
    } else if (stop->IsArray()) {
        for (const auto& sequence : stop->GetArray()) {
            if (!sequence.IsString()) return fail("stop: must be a string or array of strings");
            add(sequence);
        }
    } else {
        return fail("stop: must be a string or an array of strings");
    }
    if (!sequences.Empty()) out_.AddMember("stop_sequences", sequences, alloc());
    return true;
}

bool RequestBuilder::copy_number(const Value& request, const char* name, bool integer) {
    const Value* value = member(request, name);
    if (is_absent(value)) return true;
    if (integer ? !value->IsUint64() : !value->IsNumber()) {
        return fail(std::string(name) +
                    (integer ? ": must be a non-negative integer" : ": must be a number"));
    }
    out_.AddMember(rapidjson::StringRef(name), Value(*value, alloc()), alloc());
    return true;
}

bool RequestBuilder::add_user(const Value& request) {
    const Value* user = member(request, "user");
    if (is_absent(user)) return true;
    if (!user->IsString()) return fail("user: must be a string");
    if (user->GetStringLength() == 0) return true;
    Value metadata(kObjectType);
    metadata.AddMember("user_id", string_value(view(*user), alloc()), alloc());
    out_.AddMember("metadata", metadata, alloc());
    return true;
}

bool RequestBuilder::add_stream(const Value& request) {
    const Value* stream = member(request, "stream");
    if (is_absent(stream)) return true;
    if (!stream->IsBool()) return fail("stream: must be a boolean");
    out_.AddMember("stream", stream->GetBool(), alloc());
    return true;
}

bool RequestBuilder::merge_extra(std::string_view extra_body) {
    if (is_blank(extra_body)) return true;
    Document extra(&alloc());
    if (!parse_untrusted(extra, extra_body) || !extra.IsObject()) {
        // A configuration mistake, not the client's, but the request cannot go out as meant.
        return fail("the provider's extra body is not a JSON object");
    }
    merge_object(out_, extra);
    return true;
}

void RequestBuilder::merge_object(Value& into, Value& from) {
    for (auto& field : from.GetObject()) {
        const auto it = into.FindMember(field.name);
        if (it == into.MemberEnd()) {
            into.AddMember(field.name, field.value, alloc());
        } else if (it->value.IsObject() && field.value.IsObject()) {
            merge_object(it->value, field.value);
        } else {
            it->value = field.value;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Response: Anthropic Messages -> OpenAI chat.completion

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

void write_tool_calls(JsonWriter& writer, const std::vector<ToolCall>& calls) {
    writer.Key("tool_calls");
    writer.StartArray();
    for (const auto& call : calls) {
        writer.StartObject();
        writer.Key("id");
        put(writer, call.id);
        writer.Key("type");
        writer.String("function");
        writer.Key("function");
        writer.StartObject();
        writer.Key("name");
        put(writer, call.name);
        writer.Key("arguments");
        put(writer, call.arguments);
        writer.EndObject();
        writer.EndObject();
    }
    writer.EndArray();
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
    if (!answer.tool_calls.empty()) write_tool_calls(writer, answer.tool_calls);
    writer.EndObject();
}

struct CompletionHead {
    std::string_view id;
    std::string_view object;
    std::int64_t created;
    std::string_view model;
};

void write_head(JsonWriter& writer, const CompletionHead& head) {
    writer.Key("id");
    put(writer, head.id);
    writer.Key("object");
    put(writer, head.object);
    writer.Key("created");
    writer.Int64(head.created);
    writer.Key("model");
    put(writer, head.model);
}

std::string completion_id(std::optional<std::string_view> anthropic_id,
                          std::string_view request_id) {
    const std::string_view id = anthropic_id && !anthropic_id->empty() ? *anthropic_id : request_id;
    return "chatcmpl-" + std::string(id);
}

// ---------------------------------------------------------------------------------------------
// Streaming

struct DeltaText {
    std::string_view content;
};

struct DeltaToolCall {
    std::size_t index;
    std::optional<std::string_view> id;  // with the name: only in a call's first chunk
    std::string_view name;
    std::string_view arguments;
};

void write_delta(JsonWriter& writer, std::monostate) { (void)writer; }

void write_delta(JsonWriter& writer, const DeltaText& delta) {
    writer.Key("content");
    put(writer, delta.content);
}

void write_delta(JsonWriter& writer, const DeltaToolCall& delta) {
    writer.Key("tool_calls");
    writer.StartArray();
    writer.StartObject();
    writer.Key("index");
    writer.Uint64(delta.index);
    if (delta.id) {
        writer.Key("id");
        put(writer, *delta.id);
        writer.Key("type");
        writer.String("function");
    }
    writer.Key("function");
    writer.StartObject();
    if (delta.id) {
        writer.Key("name");
        put(writer, delta.name);
    }
    writer.Key("arguments");
    put(writer, delta.arguments);
    writer.EndObject();
    writer.EndObject();
    writer.EndArray();
}

struct DeltaRole {};

void write_delta(JsonWriter& writer, DeltaRole) {
    writer.Key("role");
    writer.String("assistant");
    writer.Key("content");
    writer.String("");
}

template <typename Delta>
std::string chunk_frame(const CompletionHead& head, const Delta& delta,
                        std::string_view finish_reason = {}) {
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    writer.StartObject();
    write_head(writer, head);
    writer.Key("choices");
    writer.StartArray();
    writer.StartObject();
    writer.Key("index");
    writer.Uint(0);
    writer.Key("delta");
    writer.StartObject();
    write_delta(writer, delta);
    writer.EndObject();
    writer.Key("finish_reason");
    if (finish_reason.empty()) {
        writer.Null();
    } else {
        put(writer, finish_reason);
    }
    writer.EndObject();
    writer.EndArray();
    writer.EndObject();
    return sse_frame({buffer.GetString(), buffer.GetSize()});
}

std::string usage_frame(const CompletionHead& head, const Usage& usage) {
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    writer.StartObject();
    write_head(writer, head);
    writer.Key("choices");
    writer.StartArray();
    writer.EndArray();
    write_usage(writer, usage);
    writer.EndObject();
    return sse_frame({buffer.GetString(), buffer.GetSize()});
}

std::uint64_t block_index(const Value& data) {
    const Value* index = member(data, "index");
    return index != nullptr && index->IsUint64() ? index->GetUint64() : kNoIndex;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public functions

RequestTranslation translate_request(const rapidjson::Value& openai_request,
                                     std::string_view target_model,
                                     std::uint32_t default_max_tokens,
                                     std::string_view extra_body_json) {
    RequestBuilder builder;
    return builder.build(openai_request, target_model, default_max_tokens, extra_body_json);
}

bool stream_include_usage(const rapidjson::Value& openai_request) {
    const Value* options = member(openai_request, "stream_options");
    const Value* include = options != nullptr ? member(*options, "include_usage") : nullptr;
    return include != nullptr && include->IsBool() && include->GetBool();
}

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

    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    writer.StartObject();
    write_head(writer, {id, "chat.completion", now_seconds(), model_for_client});
    writer.Key("choices");
    writer.StartArray();
    writer.StartObject();
    writer.Key("index");
    writer.Uint(0);
    write_message(writer, answer);
    writer.Key("logprobs");
    writer.Null();
    writer.Key("finish_reason");
    put(writer, finish_reason_for(string_member(doc, "stop_reason").value_or("")));
    writer.EndObject();
    writer.EndArray();
    write_usage(writer, result.usage);
    writer.EndObject();
    result.body.assign(buffer.GetString(), buffer.GetSize());
    return result;
}

std::string translate_error(std::string_view anthropic_body, unsigned status) {
    Document doc;
    std::string_view type;
    std::string_view message;
    if (parse_untrusted(doc, anthropic_body)) {
        const Value* error = member(doc, "error");
        if (error != nullptr && error->IsString()) {  // some proxies in between answer this way
            message = view(*error);
        } else if (error != nullptr) {
            type = string_member(*error, "type").value_or("");
            message = string_member(*error, "message").value_or("");
        }
    }
    std::string text(message);
    if (text.empty()) {
        text = "the upstream answered HTTP " + std::to_string(status);
        const std::string_view quoted = utf8_prefix(anthropic_body, kMaxQuotedBytes);
        if (!is_blank(quoted)) text.append(": ").append(quoted);
    }
    const std::string code = type.empty() ? "http_" + std::to_string(status) : std::string(type);
    return error_body(text, openai_error_type(type, status), code);
}

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
        const Value* error = member(doc, "error");
        const std::string_view error_type =
            error != nullptr ? string_member(*error, "type").value_or("") : "";
        const std::string_view message =
            error != nullptr ? string_member(*error, "message").value_or("") : "";
        return fail(message.empty() ? "the upstream stream failed" : message,
                    openai_error_type(error_type, 0),
                    error_type.empty() ? "upstream_stream_failed" : error_type);
    }
    return {};  // ping, and event types newer than this code
}

std::string StreamTranslator::start_once() {
    if (started_) return {};
    started_ = true;
    return chunk_frame({id_, "chat.completion.chunk", created_, model_}, DeltaRole{});
}

std::string StreamTranslator::on_message_start(const rapidjson::Value& data) {
    const Value* message = member(data, "message");
    const auto id = message != nullptr ? string_member(*message, "id") : std::nullopt;
    // Chunks already sent keep their id: a stream must not change ids midway.
    if (!started_ && id && !id->empty()) id_ = completion_id(id, {});
    if (message != nullptr) read_usage(member(*message, "usage"), usage_, speed_);
    return start_once();
}

std::string StreamTranslator::on_block_start(const rapidjson::Value& data) {
    std::string out = start_once();
    const Value* block = member(data, "content_block");
    const auto type = block != nullptr ? string_member(*block, "type") : std::nullopt;
    const CompletionHead head{id_, "chat.completion.chunk", created_, model_};
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
            head, DeltaToolCall{tool.openai_index, string_member(*block, "id").value_or(""),
                                string_member(*block, "name").value_or(""), arguments});
    }
    return out;
}

std::string StreamTranslator::on_block_delta(const rapidjson::Value& data) {
    const Value* delta = member(data, "delta");
    const auto type = delta != nullptr ? string_member(*delta, "type") : std::nullopt;
    const CompletionHead head{id_, "chat.completion.chunk", created_, model_};
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
        return chunk_frame(head, DeltaToolCall{it->second.openai_index, std::nullopt, {}, partial});
    }
    return {};  // thinking_delta, signature_delta, citations_delta
}

std::string StreamTranslator::on_block_stop(const rapidjson::Value& data) {
    const auto it = tool_blocks_.find(block_index(data));
    if (it == tool_blocks_.end() || it->second.has_arguments) return {};
    // A tool without parameters streams no input: "{}" keeps clients' JSON.parse working and
    // matches the non-streaming translation.
    it->second.has_arguments = true;
    return chunk_frame({id_, "chat.completion.chunk", created_, model_},
                       DeltaToolCall{it->second.openai_index, std::nullopt, {}, "{}"});
}

std::string StreamTranslator::on_message_delta(const rapidjson::Value& data) {
    read_usage(member(data, "usage"), usage_, speed_);
    const Value* delta = member(data, "delta");
    const auto stop_reason = delta != nullptr ? string_member(*delta, "stop_reason") : std::nullopt;
    if (!stop_reason || finish_sent_) return {};
    finish_reason_ = finish_reason_for(*stop_reason);
    finish_sent_ = true;
    std::string out = start_once();
    return out + chunk_frame({id_, "chat.completion.chunk", created_, model_}, std::monostate{},
                             finish_reason_);
}

std::string StreamTranslator::on_message_stop() {
    std::string out = start_once();
    const CompletionHead head{id_, "chat.completion.chunk", created_, model_};
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

}  // namespace turnout::gateway::anthropic
