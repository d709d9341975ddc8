// The judge call's chat request: its body, with the reasoning models' parameters.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "shadow/judge.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {

using detail::ascii_lower;
using rapidjson::SizeType;

bool is_reasoning_model(std::string_view model) {
    const std::size_t slash = model.rfind('/');
    if (slash != std::string_view::npos) model.remove_prefix(slash + 1);
    std::string name(model);
    std::transform(name.begin(), name.end(), name.begin(), ascii_lower);
    const std::string_view view_name = name;
    if (view_name.starts_with("o1") || view_name.starts_with("o3") || view_name.starts_with("o4")) {
        return true;
    }
    return view_name.find("gpt-5") != std::string_view::npos &&
           view_name.find("gpt-5-chat") == std::string_view::npos;
}

std::string judge_request_body(std::string_view judge_model, std::string_view prompt,
                               std::uint32_t max_tokens) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    writer.StartObject();
    writer.Key("model");
    writer.String(judge_model.data(), static_cast<SizeType>(judge_model.size()));
    writer.Key("messages");
    writer.StartArray();
    writer.StartObject();
    writer.Key("role");
    writer.String("user");
    writer.Key("content");
    writer.String(prompt.data(), static_cast<SizeType>(prompt.size()));
    writer.EndObject();
    writer.EndArray();
    if (is_reasoning_model(judge_model)) {
        // These refuse any temperature but the default and `max_tokens`; their reasoning
        // tokens count against the completion budget, which must leave room for the verdict.
        writer.Key("max_completion_tokens");
        writer.Uint(std::max(max_tokens, kJudgeReasoningMaxTokens));
    } else {
        // Temperature 0: the same pair should get the same verdict, run after run.
        writer.Key("temperature");
        writer.Int(0);
        writer.Key("max_tokens");
        writer.Uint(max_tokens);
    }
    writer.Key("stream");
    writer.Bool(false);
    writer.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace turnout::shadow
