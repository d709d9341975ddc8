#include "protocol/anthropic_conversation.hpp"

// The fields this part leaves out or reshapes are listed with the rest of the request's at the
// top of anthropic_request.cpp.

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/json_depth.hpp"

namespace turnout::protocol::anthropic::detail {
namespace {

using rapidjson::kArrayType;
using rapidjson::kObjectType;

// Iterative parsing, so that the depth check itself sees a parsed document and never a crash.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag;

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(text[i]) != lower(prefix[i])) return false;
    }
    return true;
}

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

/// Builds the Anthropic turns of one request; the first failure wins and stops the conversion.
class ConversationBuilder {
  public:
    explicit ConversationBuilder(Allocator& alloc) : alloc_(alloc) {}
    Conversation build(const Value& request);

  private:
    Allocator& alloc() { return alloc_; }
    bool fail(std::string message) {
        if (error_.empty()) error_ = std::move(message);
        return false;
    }

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

    Allocator& alloc_;
    std::string error_;
    std::string system_;
};

Conversation ConversationBuilder::build(const Value& request) {
    Value messages(kArrayType);
    if (!convert_messages(request, messages)) return {Value(kArrayType), {}, error_};
    return {std::move(messages), std::move(system_), {}};
}

bool ConversationBuilder::convert_messages(const Value& request, Value& messages) {
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

bool ConversationBuilder::convert_message(const Value& message, const std::string& path,
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

bool ConversationBuilder::add_system(const Value& message, const std::string& path) {
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

bool ConversationBuilder::content_blocks(const Value* content, const std::string& path, Parts parts,
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

bool ConversationBuilder::content_part(const Value& part, const std::string& path, Parts parts,
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

bool ConversationBuilder::image_block(const Value& part, const std::string& path, Value& blocks) {
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

void ConversationBuilder::text_block(std::string_view text, Value& blocks) {
    if (text.empty()) return;  // Anthropic rejects empty text blocks
    Value block(kObjectType);
    block.AddMember("type", "text", alloc());
    block.AddMember("text", string_value(text, alloc()), alloc());
    blocks.PushBack(block, alloc());
}

bool ConversationBuilder::tool_use_blocks(const Value& message, const std::string& path,
                                          Value& blocks) {
    const Value* calls = member(message, "tool_calls");
    if (is_absent(calls)) return true;
    if (!calls->IsArray()) return fail(path + ".tool_calls: must be an array");
    for (SizeType i = 0; i < calls->Size(); ++i) {
        if (!tool_use_block((*calls)[i], indexed(path + ".tool_calls", i), blocks)) return false;
    }
    return true;
}

bool ConversationBuilder::tool_use_block(const Value& call, const std::string& path,
                                         Value& blocks) {
    if (!call.IsObject()) return fail(path + ": must be an object");
    const auto type = string_member(call, "type");
    if (type && *type != "function") return fail(path + ".type: must be 'function'");
    const auto id = string_member(call, "id");
    if (!id || id->empty()) return fail(path + ".id: must be a non-empty string");
    const Value* function = member(call, "function");
    const auto name = string_member(function, "name");
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

bool ConversationBuilder::tool_input(const Value* arguments, const std::string& path,
                                     Value& input) {
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
    if (!base::json_within_depth(parsed, kMaxDepth)) {
        return fail(path + ": nested too deeply");
    }
    if (!parsed.IsObject()) return fail(path + ": must encode a JSON object");
    input.Swap(parsed);
    return true;
}

bool ConversationBuilder::tool_result_block(const Value& message, const std::string& path,
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

void ConversationBuilder::append_turn(const char* role, Value& blocks, Value& messages) {
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

void ConversationBuilder::finish_turn(Value& turn) {
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

}  // namespace

Conversation convert_conversation(const Value& request, Allocator& alloc) {
    return ConversationBuilder(alloc).build(request);
}

}  // namespace turnout::protocol::anthropic::detail
