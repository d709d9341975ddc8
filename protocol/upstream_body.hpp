#pragma once
/// The body an upstream receives for one target: the client's bytes as they are, unless the
/// model name, the provider kind (Anthropic translation) or extra body fields (fast mode)
/// require a rewrite. Plain C++ (RapidJSON), no sockets.

#include <rapidjson/fwd.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace turnout::protocol {

/// `client_body` is the request as received, `document` its parse (an object with a string
/// `model`). On a translation problem returns "" and sets `error` (a 400 for the client).
std::string upstream_body(std::string_view client_body, const rapidjson::Document& document,
                          const config::TargetConfig& target,
                          const config::ProviderConfig& provider, std::string& error);

/// The provider's extra body fields with the target's on top (field by field).
std::string merged_extra_body(const std::string& provider_fields, const std::string& target_fields);

/// Sets the top-level fields of the JSON object `fields_json` on `into`, replacing any there.
void overlay_fields(rapidjson::Document& into, std::string_view fields_json);

std::string to_json(const rapidjson::Value& value);

/// Token counts an OpenAI-shaped answer reports.
struct Usage {
    std::uint64_t input = 0;
    std::uint64_t output = 0;
};

/// `usage.prompt_tokens` / `completion_tokens` of a chat.completion or a usage chunk; zeros
/// when absent or of the wrong type.
Usage openai_usage(const rapidjson::Value& answer);

}  // namespace turnout::protocol
