#pragma once
/// Anthropic Messages answers -> OpenAI chat.completion answers: a whole response, an error
/// body, a stop reason. Plain C++: no I/O. The answer fields left unmapped, and why, are listed
/// at the top of anthropic_response.cpp.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::protocol::anthropic {

/// Token counts as Anthropic reports them. OpenAI's `prompt_tokens` is the sum of the three
/// input counts: Anthropic's `input_tokens` excludes the cached part.
struct Usage {
    std::uint64_t input_tokens = 0;
    std::uint64_t output_tokens = 0;
    std::uint64_t cache_read_input_tokens = 0;
    std::uint64_t cache_creation_input_tokens = 0;

    std::uint64_t prompt_tokens() const {
        return input_tokens + cache_read_input_tokens + cache_creation_input_tokens;
    }
};

struct ResponseTranslation {
    std::string body;                  ///< the OpenAI chat.completion body (when error is empty)
    std::string error;                 ///< non-empty: the upstream answer was unusable (502)
    std::optional<std::string> speed;  ///< `usage.speed` (fast mode), for the access log
    Usage usage;
};

/// Anthropic Messages response body (non-streaming, status 200) -> OpenAI chat.completion body
/// with id "chatcmpl-" + the Anthropic id (`request_id` when the answer has none).
ResponseTranslation translate_response(std::string_view anthropic_body, std::string_view request_id,
                                       std::string_view model_for_client);

/// Anthropic error body (any status, any shape, even not JSON) -> OpenAI error body
/// `{"error":{"message","type","code"}}`; `code` keeps Anthropic's error type.
std::string translate_error(std::string_view anthropic_body, unsigned status);

/// Anthropic `stop_reason` -> OpenAI `finish_reason` ("stop" for unknown values).
std::string_view finish_reason_for(std::string_view stop_reason);

}  // namespace turnout::protocol::anthropic
