#pragma once
/// Translation between OpenAI's chat.completions API and Anthropic's Messages API
/// (`anthropic-version: 2023-06-01`), both directions, streaming included. Plain C++: no I/O,
/// no Beast; the proxy feeds it bodies and whole SSE events and relays what comes back.
///
/// Every function takes untrusted input: bad JSON or wrong types give an error value, never a
/// crash. The fields left unmapped, and why, are listed at the top of anthropic.cpp.

#include <rapidjson/fwd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace turnout::gateway::anthropic {

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

/// Translates one Anthropic Messages event stream into OpenAI `chat.completion.chunk` frames.
///
/// Feed it complete SSE events (the raw text with `event:` and `data:` lines and the blank
/// line that ends it, as SseSplitter::next_event returns them). Each call returns zero or more
/// OpenAI frames (`data: {...}\n\n`); after `message_stop` the text ends with
/// `data: [DONE]\n\n`. An `error` event, or an event whose data is not JSON, returns one
/// OpenAI error frame and no [DONE]: failed() is then true and the caller ends the stream.
/// Events after failed() or finished() are ignored.
///
/// Thread safety: none; one translator belongs to one stream.
class StreamTranslator {
  public:
    /// `request_id` names the chunks until `message_start` brings Anthropic's id;
    /// `include_usage` adds the final `choices: []` chunk with usage before [DONE].
    StreamTranslator(std::string request_id, std::string model_for_client, bool include_usage);

    std::string on_event(std::string_view sse_event);

    /// An `error` event (or malformed data) arrived; the last returned text ended with one
    /// OpenAI error frame and no [DONE].
    bool failed() const { return failed_; }
    /// `message_stop` seen; the last returned text ended with `data: [DONE]`.
    bool finished() const { return finished_; }
    const Usage& usage() const { return usage_; }
    std::optional<std::string> speed() const { return speed_; }
    /// OpenAI's finish_reason once `message_delta` brought a stop reason; "" before.
    std::string_view finish_reason() const { return finish_reason_; }
    /// The assistant text so far (text deltas joined), for the shadow judge.
    std::string assembled_text() const { return text_; }

  private:
    struct ToolBlock {
        std::size_t openai_index = 0;  // position among the message's tool calls
        bool has_arguments = false;    // a non-empty input_json_delta arrived
    };

    std::string on_message_start(const rapidjson::Value& data);
    std::string on_block_start(const rapidjson::Value& data);
    std::string on_block_delta(const rapidjson::Value& data);
    std::string on_block_stop(const rapidjson::Value& data);
    std::string on_message_delta(const rapidjson::Value& data);
    std::string on_message_stop();
    std::string fail(std::string_view message, std::string_view type, std::string_view code);
    /// The role chunk, once, before anything else the client sees.
    std::string start_once();

    std::string id_;
    std::string model_;
    std::int64_t created_;
    bool include_usage_;
    bool started_ = false;
    bool finish_sent_ = false;
    bool failed_ = false;
    bool finished_ = false;
    Usage usage_;
    std::optional<std::string> speed_;
    std::string finish_reason_;
    std::string text_;
    std::unordered_map<std::uint64_t, ToolBlock> tool_blocks_;  // by Anthropic block index
    std::size_t tool_count_ = 0;
};

}  // namespace turnout::gateway::anthropic
