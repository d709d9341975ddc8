// The checks of a Messages request's fields other than `messages` (anthropic_messages.cpp), and
// what the request asks for.

#include "sim/anthropic_request.hpp"

#include "sim/anthropic_check.hpp"
#include "sim/request_json.hpp"

namespace turnout::sim {
namespace {

constexpr std::array<std::string_view, 21> kMessagesFields = {
    "model",         "messages",       "max_tokens",
    "system",        "metadata",       "stream",
    "temperature",   "top_k",          "top_p",
    "tools",         "thinking",       "service_tier",
    "container",     "mcp_servers",    "speed",
    "tool_choice",   "stop_sequences", "context_management",
    "output_format", "output_config",  "inference_geo"};

// Calls `check(list, i)` for each item of the optional list member `name` (under its path)
// until one fails.
template <class Check>
bool check_list(const rapidjson::Value& request, const char* name, Problem& problem, Check check) {
    const rapidjson::Value* list = find(request, name);
    if (list == nullptr) {
        return true;
    }
    const Problem::Scope scope(problem, name);
    if (!list->IsArray()) {
        return problem.fail("Input should be a valid list");
    }
    for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
        if (!check(*list, i)) {
            return false;
        }
    }
    return true;
}

bool check_system(const rapidjson::Value& request, Problem& problem) {
    const rapidjson::Value* system = find(request, "system");
    if (system == nullptr || system->IsString()) {
        return true;
    }
    const Problem::Scope scope(problem, "system");
    if (!system->IsArray()) {
        return problem.fail("Input should be a valid string or list");
    }
    for (rapidjson::SizeType i = 0; i < system->Size(); ++i) {
        const Problem::Scope item(problem, i);
        const rapidjson::Value& block = (*system)[i];
        if (!block.IsObject()) {
            return problem.fail("Input should be a valid dictionary");
        }
        if (string_member(block, "type", "") != "text") {
            return fail_field(problem, "type", "Input should be 'text'");
        }
        if (!check_text_block(block, problem)) {
            return false;
        }
    }
    return true;
}

bool valid_tool_name(std::string_view name) {
    return !name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

bool check_tool(const rapidjson::Value& tool, Problem& problem) {
    if (!tool.IsObject()) {
        return problem.fail("Input should be a valid dictionary");
    }
    std::string_view name;
    if (!string_field(tool, "name", problem, name)) {
        return false;
    }
    const std::string_view type = string_member(tool, "type", "custom");
    if (type != "custom") {
        return true;  // a server tool (web_search_..., bash_..., ...): configured by its type
    }
    if (!valid_tool_name(name)) {
        return fail_field(problem, "name", "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'");
    }
    const rapidjson::Value* description = find(tool, "description");
    if (description != nullptr && !description->IsString()) {
        return fail_field(problem, "description", "Input should be a valid string");
    }
    const rapidjson::Value* schema = find(tool, "input_schema");
    if (schema == nullptr || !schema->IsObject()) {
        return fail_field(
            problem, "input_schema",
            schema == nullptr ? "Field required" : "Input should be a valid dictionary");
    }
    if (string_member(*schema, "type", "") != "object") {
        const Problem::Scope scope(problem, "input_schema");
        return fail_field(problem, "type", "Input should be 'object'");
    }
    return true;
}

bool check_tools(const rapidjson::Value& request, Problem& problem) {
    const auto check_item = [&](const rapidjson::Value& tools, rapidjson::SizeType i) {
        {
            const Problem::Scope item(problem, i);
            if (!check_tool(tools[i], problem)) {
                return false;
            }
        }
        const std::string_view name = string_member(tools[i], "name", "");
        for (rapidjson::SizeType j = 0; j < i; ++j) {
            if (string_member(tools[j], "name", "") == name) {
                return problem.fail("Tool names must be unique.");
            }
        }
        return true;
    };
    return check_list(request, "tools", problem, check_item);
}

// On success `type` is auto, any, tool or none ("auto" when absent) and `name` the forced tool.
bool check_tool_choice(const rapidjson::Value& request, Problem& problem, std::string_view& type,
                       std::string_view& name) {
    type = "auto";
    const rapidjson::Value* choice = find(request, "tool_choice");
    if (choice == nullptr) {
        return true;
    }
    const Problem::Scope scope(problem, "tool_choice");
    if (!choice->IsObject()) {
        return problem.fail("Input should be a valid dictionary");
    }
    if (!string_field(*choice, "type", problem, type)) {
        return false;
    }
    if (type != "auto" && type != "any" && type != "tool" && type != "none") {
        return fail_field(problem, "type", "Input should be 'auto', 'any', 'tool' or 'none'");
    }
    const rapidjson::Value* parallel = find(*choice, "disable_parallel_tool_use");
    if (parallel != nullptr && !parallel->IsBool()) {
        return fail_field(problem, "disable_parallel_tool_use", "Input should be a valid boolean");
    }
    return type != "tool" || string_field(*choice, "name", problem, name);
}

bool check_number(const rapidjson::Value& request, const char* name, double high,
                  Problem& problem) {
    const rapidjson::Value* value = find(request, name);
    if (value == nullptr) {
        return true;
    }
    if (!value->IsNumber()) {
        return fail_field(problem, name, "Input should be a valid number");
    }
    if (value->GetDouble() < 0) {
        return fail_field(problem, name, "Input should be greater than or equal to 0");
    }
    if (value->GetDouble() > high) {
        return fail_field(problem, name, "Input should be less than or equal to 1");
    }
    return true;
}

bool check_sampling(const rapidjson::Value& request, Problem& problem) {
    if (!check_number(request, "temperature", 1, problem) ||
        !check_number(request, "top_p", 1, problem)) {
        return false;
    }
    const rapidjson::Value* top_k = find(request, "top_k");
    if (top_k != nullptr && !(top_k->IsUint64())) {
        return fail_field(problem, "top_k", "Input should be a non-negative integer");
    }
    const rapidjson::Value* stream = find(request, "stream");
    if (stream != nullptr && !stream->IsBool()) {
        return fail_field(problem, "stream", "Input should be a valid boolean");
    }
    const rapidjson::Value* metadata = find(request, "metadata");
    if (metadata != nullptr && !metadata->IsObject()) {
        return fail_field(problem, "metadata", "Input should be a valid dictionary");
    }
    const auto check_stop = [&](const rapidjson::Value& stops, rapidjson::SizeType i) {
        if (stops[i].IsString()) {
            return true;
        }
        const Problem::Scope item(problem, i);
        return problem.fail("Input should be a valid string");
    };
    return check_list(request, "stop_sequences", problem, check_stop);
}

bool check_max_tokens(const rapidjson::Value& request, bool required, Problem& problem,
                      std::size_t& out) {
    const rapidjson::Value* value = find(request, "max_tokens");
    if (value == nullptr) {
        return !required || fail_field(problem, "max_tokens", "Field required");
    }
    if (!value->IsInt64()) {
        return fail_field(problem, "max_tokens", "Input should be a valid integer");
    }
    if (value->GetInt64() < 1) {
        return fail_field(problem, "max_tokens", "Input should be greater than or equal to 1");
    }
    out = static_cast<std::size_t>(value->GetInt64());
    return true;
}

// A tool is called when tools are offered, tool_choice is not none and the last user message
// does not carry a tool_result (which the model would now answer in prose). A forced tool
// (tool_choice {type: tool}) is the one called; otherwise the first.
std::optional<std::string_view> tool_to_call(const rapidjson::Value& request,
                                             std::string_view choice, std::string_view forced) {
    const rapidjson::Value* tools = find(request, "tools");
    if (tools == nullptr || tools->Empty() || choice == "none") {
        return std::nullopt;
    }
    const rapidjson::Value& messages = request["messages"];
    for (rapidjson::SizeType i = messages.Size(); i-- > 0;) {
        if (string_member(messages[i], "role", "") == "user") {
            if (has_block(messages[i], "tool_result", "tool_use_id", "")) {
                return std::nullopt;
            }
            break;
        }
    }
    if (choice == "tool") {
        return forced;
    }
    return string_member((*tools)[0], "name", "tool");
}

}  // namespace

bool read_messages_request(const rapidjson::Value& request, bool count_only, MessagesRequest& out,
                           std::string& problem_text) {
    Problem problem(problem_text);
    for (const auto& member : request.GetObject()) {
        if (!one_of(kMessagesFields, view(member.name))) {
            return fail_field(problem, view(member.name), "Extra inputs are not permitted");
        }
    }
    if (!string_field(request, "model", problem, out.model)) {
        return false;
    }
    if (out.model.empty()) {
        return fail_field(problem, "model", "String should have at least 1 character");
    }
    std::string_view choice;
    std::string_view forced;
    if (!check_max_tokens(request, !count_only, problem, out.max_tokens) ||
        !check_messages(request, problem) || !check_system(request, problem) ||
        !check_tools(request, problem) || !check_tool_choice(request, problem, choice, forced) ||
        !check_sampling(request, problem)) {
        return false;
    }
    if (const rapidjson::Value* speed = find(request, "speed")) {
        if (!speed->IsString() || (view(*speed) != "fast" && view(*speed) != "standard")) {
            return fail_field(problem, "speed", "Input should be 'standard' or 'fast'");
        }
        out.speed = view(*speed);
    }
    out.stream = bool_member(request, "stream");
    out.tool = tool_to_call(request, choice, forced);
    return true;
}

}  // namespace turnout::sim
