#pragma once
/// Anthropic Messages event stream -> OpenAI `chat.completion.chunk` frames. Plain C++: no I/O;
/// the relay feeds it whole SSE events and sends on what comes back.

#include <rapidjson/fwd.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "protocol/anthropic_response.hpp"

namespace turnout::protocol::anthropic {

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

}  // namespace turnout::protocol::anthropic
