// The checks of a Messages request's `messages`: roles, content blocks, tool pairing.

#include "sim/anthropic_check.hpp"
#include "sim/request_json.hpp"
#include "sim/values.hpp"

namespace turnout::sim {
namespace {

// Block types accepted without a closer look; text, image, tool_use and tool_result are checked.
constexpr std::array<std::string_view, 12> kOtherBlockTypes = {
    "document",          "search_result",         "thinking",
    "redacted_thinking", "server_tool_use",       "web_search_tool_result",
    "mcp_tool_use",      "mcp_tool_result",       "container_upload",
    "tool_reference",    "web_fetch_tool_result", "code_execution_tool_result"};

bool check_image_block(const rapidjson::Value& block, Problem& problem) {
    const rapidjson::Value* source = find(block, "source");
    if (source == nullptr || !source->IsObject()) {
        return fail_field(
            problem, "source",
            source == nullptr ? "Field required" : "Input should be a valid dictionary");
    }
    const Problem::Scope scope(problem, "source");
    std::string_view type;
    std::string_view value;
    if (!string_field(*source, "type", problem, type)) {
        return false;
    }
    if (type == "base64") {
        if (!string_field(*source, "media_type", problem, type) ||
            !string_field(*source, "data", problem, value)) {
            return false;
        }
        if (type != "image/jpeg" && type != "image/png" && type != "image/gif" &&
            type != "image/webp") {
            return fail_field(problem, "media_type",
                              "Input should be 'image/jpeg', 'image/png', 'image/gif' or "
                              "'image/webp'");
        }
        return true;
    }
    if (type == "url") {
        return string_field(*source, "url", problem, value);
    }
    if (type == "file") {
        return string_field(*source, "file_id", problem, value);
    }
    return fail_field(problem, "type", "Input should be 'base64', 'url' or 'file'");
}

bool check_block(const rapidjson::Value& block, std::string_view role, Problem& problem);

bool check_tool_result_block(const rapidjson::Value& block, Problem& problem) {
    std::string_view id;
    if (!string_field(block, "tool_use_id", problem, id)) {
        return false;
    }
    const rapidjson::Value* is_error = find(block, "is_error");
    if (is_error != nullptr && !is_error->IsBool()) {
        return fail_field(problem, "is_error", "Input should be a valid boolean");
    }
    const rapidjson::Value* content = find(block, "content");
    if (content == nullptr || content->IsString()) {
        return true;
    }
    if (!content->IsArray()) {
        return fail_field(problem, "content", "Input should be a valid string or list");
    }
    const Problem::Scope scope(problem, "content");
    for (rapidjson::SizeType i = 0; i < content->Size(); ++i) {
        const Problem::Scope item(problem, i);
        const rapidjson::Value& part = (*content)[i];
        if (part.IsObject() && string_member(part, "type", "") == "tool_result") {
            return fail_field(problem, "type", "tool_result blocks cannot be nested");
        }
        if (!check_block(part, "user", problem)) {
            return false;
        }
    }
    return true;
}

bool check_tool_use_block(const rapidjson::Value& block, Problem& problem) {
    std::string_view value;
    if (!string_field(block, "id", problem, value) ||
        !string_field(block, "name", problem, value)) {
        return false;
    }
    const rapidjson::Value* input = find(block, "input");
    if (input == nullptr || !input->IsObject()) {
        return fail_field(
            problem, "input",
            input == nullptr ? "Field required" : "Input should be a valid dictionary");
    }
    return true;
}

bool check_block(const rapidjson::Value& block, std::string_view role, Problem& problem) {
    if (!block.IsObject()) {
        return problem.fail("Input should be a valid dictionary");
    }
    std::string_view type;
    if (!string_field(block, "type", problem, type)) {
        return false;
    }
    if (type == "text") {
        return check_text_block(block, problem);
    }
    if (type == "image") {
        return check_image_block(block, problem);
    }
    if (type == "tool_use") {
        if (role != "assistant") {
            return problem.fail("tool_use blocks can only appear in assistant messages");
        }
        return check_tool_use_block(block, problem);
    }
    if (type == "tool_result") {
        if (role != "user") {
            return problem.fail("tool_result blocks can only appear in user messages");
        }
        return check_tool_result_block(block, problem);
    }
    if (one_of(kOtherBlockTypes, type)) {
        return true;
    }
    return fail_field(problem, "type", "Input tag '", type,
                      "' found using 'type' does not match any of the expected tags");
}

// The text a final assistant message (a prefill) ends with, which may not end in whitespace.
std::string_view final_text(const rapidjson::Value& content) {
    if (content.IsString()) {
        return view(content);
    }
    if (content.IsArray() && !content.Empty()) {
        return string_member(content[content.Size() - 1], "text", "");
    }
    return {};
}

bool check_message(const rapidjson::Value& message, bool final, Problem& problem) {
    if (!message.IsObject()) {
        return problem.fail("Input should be a valid dictionary");
    }
    for (const auto& member : message.GetObject()) {
        const std::string_view name = view(member.name);
        if (name != "role" && name != "content") {
            return fail_field(problem, name, "Extra inputs are not permitted");
        }
    }
    std::string_view role;
    if (!string_field(message, "role", problem, role)) {
        return false;
    }
    if (role != "user" && role != "assistant") {
        return fail_field(problem, "role", "Input should be 'user' or 'assistant'");
    }
    const rapidjson::Value* content = find(message, "content");
    if (content == nullptr) {
        return fail_field(problem, "content", "Field required");
    }
    if (!content->IsString() && !content->IsArray()) {
        return fail_field(problem, "content", "Input should be a valid string or list");
    }
    const bool prefill = final && role == "assistant";
    const bool empty = content->IsString() ? content->GetStringLength() == 0 : content->Empty();
    if (empty && !prefill) {
        return problem.fail(
            "all messages must have non-empty content except for the optional final assistant "
            "message");
    }
    if (content->IsArray()) {
        const Problem::Scope scope(problem, "content");
        for (rapidjson::SizeType i = 0; i < content->Size(); ++i) {
            const Problem::Scope item(problem, i);
            if (!check_block((*content)[i], role, problem)) {
                return false;
            }
        }
    }
    const std::string_view text = final_text(*content);
    if (prefill && !text.empty() && kWhitespace.find(text.back()) != std::string_view::npos) {
        return problem.fail("final assistant content cannot end with trailing whitespace");
    }
    return true;
}

// Every tool_use needs its tool_result in the next message, and every tool_result its tool_use
// in the previous one. Runs after check_message, so the shapes are known to be right.
bool check_tool_pairing(const rapidjson::Value& messages, Problem& problem) {
    for (rapidjson::SizeType i = 0; i < messages.Size(); ++i) {
        const Problem::Scope scope(problem, i);
        const rapidjson::Value& content = messages[i]["content"];
        if (!content.IsArray()) {
            continue;
        }
        for (rapidjson::SizeType j = 0; j < content.Size(); ++j) {
            const std::string_view type = string_member(content[j], "type", "");
            if (type == "tool_use" && i + 1 < messages.Size()) {
                const std::string_view id = string_member(content[j], "id", "");
                if (!has_block(messages[i + 1], "tool_result", "tool_use_id", id)) {
                    return problem.fail(
                        "`tool_use` ids were found without `tool_result` blocks immediately "
                        "after: ",
                        id,
                        ". Each `tool_use` block must have a corresponding `tool_result` block "
                        "in the next message.");
                }
            }
            if (type == "tool_result") {
                const std::string_view id = string_member(content[j], "tool_use_id", "");
                if (i == 0 || !has_block(messages[i - 1], "tool_use", "id", id)) {
                    const Problem::Scope block(problem, "content");
                    const Problem::Scope index(problem, j);
                    return problem.fail(
                        "unexpected `tool_use_id` found in `tool_result` blocks: ", id,
                        ". Each `tool_result` block must have a corresponding `tool_use` block "
                        "in the previous message.");
                }
            }
        }
    }
    return true;
}

}  // namespace

bool fail_field(Problem& problem, std::string_view name, std::string_view a, std::string_view b,
                std::string_view c) {
    const Problem::Scope scope(problem, name);
    return problem.fail(a, b, c);
}

bool string_field(const rapidjson::Value& object, const char* name, Problem& problem,
                  std::string_view& out) {
    const rapidjson::Value* value = find(object, name);
    if (value != nullptr && value->IsString()) {
        out = view(*value);
        return true;
    }
    return fail_field(problem, name,
                      value == nullptr ? "Field required" : "Input should be a valid string");
}

bool check_text_block(const rapidjson::Value& block, Problem& problem) {
    std::string_view text;
    if (!string_field(block, "text", problem, text)) {
        return false;
    }
    if (text.empty()) {
        return problem.fail("text content blocks must be non-empty");
    }
    if (text.find_first_not_of(kWhitespace) == std::string_view::npos) {
        return problem.fail("text content blocks must contain non-whitespace text");
    }
    return true;
}

bool has_block(const rapidjson::Value& message, std::string_view type, const char* key,
               std::string_view value) {
    const rapidjson::Value* content = find(message, "content");
    if (content == nullptr || !content->IsArray()) {
        return false;
    }
    for (const auto& block : content->GetArray()) {
        if (string_member(block, "type", "") == type &&
            (value.empty() || string_member(block, key, "") == value)) {
            return true;
        }
    }
    return false;
}

bool check_messages(const rapidjson::Value& request, Problem& problem) {
    const Problem::Scope scope(problem, "messages");
    const rapidjson::Value* messages = find(request, "messages");
    if (messages == nullptr) {
        return problem.fail("Field required");
    }
    if (!messages->IsArray()) {
        return problem.fail("Input should be a valid list");
    }
    if (messages->Empty()) {
        return problem.fail("at least one message is required");
    }
    std::string_view previous;
    for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
        {
            const Problem::Scope item(problem, i);
            if (!check_message((*messages)[i], i + 1 == messages->Size(), problem)) {
                return false;
            }
        }
        const std::string_view role = string_member((*messages)[i], "role", "");
        if (i == 0 && role != "user") {
            return problem.fail(R"(first message must use the "user" role)");
        }
        if (role == previous) {
            return problem.fail(
                R"(roles must alternate between "user" and "assistant", but found multiple ")",
                role, R"(" roles in a row)");
        }
        previous = role;
    }
    return check_tool_pairing(*messages, problem);
}

}  // namespace turnout::sim
