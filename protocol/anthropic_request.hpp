#pragma once
/// OpenAI chat.completions request -> Anthropic Messages request (`anthropic-version:
/// 2023-06-01`). Plain C++: no I/O. The request fields left unmapped, and why, are listed at the
/// top of anthropic_request.cpp.

#include <rapidjson/fwd.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace turnout::protocol::anthropic {

struct RequestTranslation {
    std::string body;   ///< the Anthropic Messages request body (when error is empty)
    std::string error;  ///< non-empty: answer 400 invalid_request_error with this message
};

/// OpenAI chat.completions request (already parsed) -> Anthropic Messages request body.
/// `target_model` replaces the client's `model`; `default_max_tokens` applies when the client
/// sets neither `max_tokens` nor `max_completion_tokens` (Anthropic requires one);
/// `extra_body_json` is "" or a JSON object merged into the top level, objects recursively
/// (fast mode: `{"speed":"fast"}`), after the translation, so it wins over client fields.
RequestTranslation translate_request(const rapidjson::Value& openai_request,
                                     std::string_view target_model,
                                     std::uint32_t default_max_tokens,
                                     std::string_view extra_body_json = {});

/// Whether an OpenAI request asks for a final usage chunk (`stream_options.include_usage`).
bool stream_include_usage(const rapidjson::Value& openai_request);

}  // namespace turnout::protocol::anthropic
