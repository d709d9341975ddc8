#include "protocol/upstream_body.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "protocol/anthropic.hpp"

namespace turnout::protocol {

void overlay_fields(rapidjson::Document& into, std::string_view fields_json) {
    rapidjson::Document fields;
    fields.Parse(fields_json.data(), fields_json.size());
    if (!fields.IsObject() || !into.IsObject()) return;  // the loader only stores objects
    for (auto& member : fields.GetObject()) {
        into.RemoveMember(member.name);
        rapidjson::Value name(member.name, into.GetAllocator());
        rapidjson::Value value(member.value, into.GetAllocator());
        into.AddMember(name, value, into.GetAllocator());
    }
}

std::string to_json(const rapidjson::Value& value) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    value.Accept(writer);
    return {out.GetString(), out.GetSize()};
}

Usage openai_usage(const rapidjson::Value& answer) {
    Usage usage;
    if (!answer.IsObject()) return usage;
    const auto found = answer.FindMember("usage");
    if (found == answer.MemberEnd() || !found->value.IsObject()) return usage;
    const auto& u = found->value;
    if (u.HasMember("prompt_tokens") && u["prompt_tokens"].IsUint64()) {
        usage.input = u["prompt_tokens"].GetUint64();
    }
    if (u.HasMember("completion_tokens") && u["completion_tokens"].IsUint64()) {
        usage.output = u["completion_tokens"].GetUint64();
    }
    return usage;
}

std::string merged_extra_body(const std::string& provider_fields,
                              const std::string& target_fields) {
    if (provider_fields.empty() || target_fields.empty()) {
        return provider_fields.empty() ? target_fields : provider_fields;
    }
    rapidjson::Document merged;
    merged.Parse(provider_fields.data(), provider_fields.size());
    overlay_fields(merged, target_fields);
    return to_json(merged);
}

std::string upstream_body(std::string_view client_body, const rapidjson::Document& document,
                          const config::TargetConfig& target,
                          const config::ProviderConfig& provider, std::string& error) {
    const std::string extra = merged_extra_body(provider.extra_body_json, target.extra_body_json);
    if (provider.kind == config::ProviderKind::anthropic) {
        auto translated = anthropic::translate_request(document, target.model,
                                                       provider.max_tokens_default, extra);
        error = std::move(translated.error);
        return std::move(translated.body);
    }
    const auto& model = document["model"];
    if (extra.empty() &&
        std::string_view(model.GetString(), model.GetStringLength()) == target.model) {
        return std::string(client_body);
    }
    rapidjson::Document copy;
    copy.CopyFrom(document, copy.GetAllocator());
    copy["model"].SetString(target.model.data(),
                            static_cast<rapidjson::SizeType>(target.model.size()),
                            copy.GetAllocator());
    if (!extra.empty()) overlay_fields(copy, extra);
    return to_json(copy);
}

}  // namespace turnout::protocol
