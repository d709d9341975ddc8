#include "protocol/anthropic_request.hpp"

// What the request translation leaves out, and why.
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

#include <rapidjson/document.h>

#include <string>
#include <utility>

#include "base/json_depth.hpp"
#include "protocol/anthropic_conversation.hpp"
#include "protocol/anthropic_json.hpp"

namespace turnout::protocol::anthropic {
namespace {

using namespace detail;
using rapidjson::kArrayType;
using rapidjson::kObjectType;

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
    bool has_tools_ = false;
};

RequestTranslation RequestBuilder::build(const Value& request, std::string_view target_model,
                                         std::uint32_t default_max_tokens,
                                         std::string_view extra_body) {
    if (!request.IsObject()) return {{}, "the request body must be a JSON object"};
    if (!base::json_within_depth(request, kMaxDepth)) {
        return {{}, "the request is nested too deeply"};
    }
    if (!check_n(request)) return {{}, error_};
    Conversation conversation = convert_conversation(request, alloc());
    if (!conversation.error.empty()) return {{}, std::move(conversation.error)};
    out_.AddMember("model", string_value(target_model, alloc()), alloc());
    if (!add_max_tokens(request, default_max_tokens)) return {{}, error_};
    if (!conversation.system.empty()) {
        out_.AddMember("system", string_value(conversation.system, alloc()), alloc());
    }
    out_.AddMember("messages", conversation.messages, alloc());
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
    const auto name = string_member(function, "name");
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
    const auto name = string_member(function, "name");
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

}  // namespace

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

}  // namespace turnout::protocol::anthropic
