// Answers as the judge reads them: the text of a chat.completion, or of a stream reassembled
// from its SSE payloads.
#include <rapidjson/document.h>

#include <cstdint>
#include <limits>
#include <map>
#include <vector>

#include "base/json_input.hpp"
#include "shadow/chat_completion.hpp"
#include "shadow/json_util.hpp"
#include "shadow/judge.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;
using rapidjson::Document;
using rapidjson::Value;

struct ToolCall {
    std::string name;
    std::string arguments;
};

/// Arguments as sent: a JSON string holds the arguments' JSON text; some servers send an
/// object instead.
std::string arguments_text(const Value* arguments) {
    if (arguments == nullptr || arguments->IsNull()) return {};
    if (arguments->IsString()) return std::string(view(*arguments));
    return json_text(*arguments);
}

std::string render_answer(std::string_view content, std::string_view refusal,
                          const std::vector<ToolCall>& calls, std::string_view finish_reason) {
    std::string out(content);
    const auto line = [&out](std::string_view text) {
        if (!out.empty()) out += '\n';
        out.append(text);
    };
    if (!refusal.empty()) line("refusal: " + std::string(refusal));
    for (const ToolCall& call : calls) line("tool_call " + call.name + "(" + call.arguments + ")");
    // A cut-off answer looks complete to a reader who is not told; both sides get this line.
    if (finish_reason == "length" || finish_reason == "content_filter") {
        line("[finish_reason: " + std::string(finish_reason) + "]");
    }
    return out;
}

/// The stream's reassembly state of choice 0.
struct StreamAnswer {
    std::string content;
    std::string refusal;
    std::map<std::uint64_t, ToolCall> tool_calls;
    std::uint64_t last_index = 0;
    std::string finish_reason;

    void add_tool_calls(const Value& deltas, bool legacy);
    void add(const Value& chunk);
};

void StreamAnswer::add_tool_calls(const Value& deltas, bool legacy) {
    const auto add_one = [this](const Value& delta, std::uint64_t index) {
        ToolCall& call = tool_calls[index];
        last_index = index;
        const Value* function = member(delta, "function");
        const Value& fields = function != nullptr ? *function : delta;
        // Names arrive whole (the last one sent wins, as the OpenAI SDKs do); arguments in
        // fragments.
        const std::string_view name = string_member(fields, "name");
        if (!name.empty()) call.name = std::string(name);
        call.arguments += arguments_text(member(fields, "arguments"));
    };
    // The legacy function_call delta is one call; give it an index no tool call uses.
    if (legacy) return add_one(deltas, std::numeric_limits<std::uint64_t>::max());
    if (!deltas.IsArray()) return;
    for (const auto& delta : deltas.GetArray()) {
        const Value* index = member(delta, "index");
        std::uint64_t at = last_index;
        if (index != nullptr && index->IsUint64()) {
            at = index->GetUint64();
        } else if (!string_member(delta, "id").empty()) {
            // No index but an id: a new call (servers that omit the index send it whole).
            at = tool_calls.empty() ? 0 : tool_calls.rbegin()->first + 1;
        }
        add_one(delta, at);
    }
}

void StreamAnswer::add(const Value& chunk) {
    const Value* choices = member(chunk, "choices");
    if (choices == nullptr || !choices->IsArray()) return;
    for (const auto& choice : choices->GetArray()) {
        const Value* index = member(choice, "index");
        if (index != nullptr && !(index->IsUint64() && index->GetUint64() == 0)) continue;
        if (const Value* delta = member(choice, "delta"); delta != nullptr) {
            content.append(content_text(member(*delta, "content")));
            refusal.append(string_member(*delta, "refusal"));
            if (const Value* calls = member(*delta, "tool_calls")) add_tool_calls(*calls, false);
            if (const Value* call = member(*delta, "function_call"); call && call->IsObject()) {
                add_tool_calls(*call, true);
            }
        }
        const std::string_view reason = string_member(choice, "finish_reason");
        if (!reason.empty()) finish_reason = std::string(reason);
    }
}

}  // namespace

std::string answer_text_from_openai(std::string_view chat_completion_body) {
    const ChatCompletion completion(chat_completion_body);
    const Value* message = completion.message();
    if (message == nullptr) return std::string(chat_completion_body);

    std::vector<ToolCall> calls;
    if (const Value* tool_calls = member(*message, "tool_calls");
        tool_calls != nullptr && tool_calls->IsArray()) {
        for (const auto& call : tool_calls->GetArray()) {
            const Value* function = member(call, "function");
            if (function == nullptr) continue;
            calls.push_back({std::string(string_member(*function, "name")),
                             arguments_text(member(*function, "arguments"))});
        }
    }
    if (const Value* call = member(*message, "function_call"); call && call->IsObject()) {
        calls.push_back({std::string(string_member(*call, "name")),
                         arguments_text(member(*call, "arguments"))});
    }
    return render_answer(content_text(member(*message, "content")),
                         string_member(*message, "refusal"), calls,
                         string_member(*completion.choice(), "finish_reason"));
}

std::string answer_text_from_stream(std::span<const std::string> data_payloads) {
    StreamAnswer answer;
    for (const std::string& payload : data_payloads) {
        std::string_view data = trim(payload);
        if (data.starts_with("data:")) data = trim(data.substr(5));
        if (data == "[DONE]") continue;
        Document doc;
        if (!base::parse_json_input(data, doc) || !doc.IsObject()) continue;
        answer.add(doc);
    }
    std::vector<ToolCall> calls;
    calls.reserve(answer.tool_calls.size());
    for (auto& [index, call] : answer.tool_calls) calls.push_back(std::move(call));
    return render_answer(answer.content, answer.refusal, calls, answer.finish_reason);
}

}  // namespace turnout::shadow
