#pragma once
/// The Messages API's answers (--kind anthropic): what one answer holds, and the answer
/// rendered whole or as the real API's stream of SSE events, into reused strings. Plain C++.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/answer_text.hpp"
#include "sim/anthropic_request.hpp"
#include "sim/plan.hpp"
#include "sim/state.hpp"

namespace turnout::sim {

/// The text block before a tool_use, split into SimState::tool_preamble at start-up.
inline constexpr std::string_view kToolPreamble = "Let me check.";
// The real API's first input_json_delta carries an empty partial_json: clients must cope.
inline constexpr std::size_t kToolInputDeltas = kToolArgumentPieces + 1;
inline constexpr std::string_view kAnthropicModelsBody =
    R"({"data":[{"type":"model","id":"sim-model","display_name":"Simulated model",)"
    R"("created_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"sim-model",)"
    R"("last_id":"sim-model"})";

/// What one Messages answer holds: a text block, then maybe a tool_use block.
struct MessageAnswer {
    Reply reply;
    Generation text;  // the text block's tokens
    std::optional<std::string_view> tool;
    std::string_view stop_reason;
    std::size_t output_tokens = 0;
    std::string_view speed;  // usage.speed; empty: absent

    std::size_t deltas() const { return text.tokens + (tool ? kToolInputDeltas : 0); }
};

/// Checked before the body, as the real API does: x-api-key and a known anthropic-version.
/// Returns the refusal's status with its body in `body`, or 0.
unsigned check_anthropic_headers(const RequestData& request, std::string& body,
                                 std::string& scratch);

/// The answer to `request` as planned: text cut at max_tokens, or a tool call (a fixed preamble
/// and input, never cut); fast mode from the body or the anthropic-beta header.
MessageAnswer plan_answer(const Reply& reply, const MessagesRequest& request, const Plan& plan,
                          const RequestData& headers,
                          const std::vector<std::string>& tool_preamble);

/// The whole message, for a request without `stream`.
void render_message(std::string& out, const MessageAnswer& answer);

/// A count_tokens answer.
void render_token_count(std::string& out, std::size_t input_tokens);

// The stream's events in the real API's order: message_start, then per block
// content_block_start (a ping after the first), its deltas and content_block_stop, then
// message_delta and message_stop. Block 0 is the text, block 1 the tool_use.

void render_message_start(std::string& frame, const MessageAnswer& answer);
void render_block_start(std::string& frame, const MessageAnswer& answer, std::size_t block);
void render_ping(std::string& frame);
/// Delta `index` of `block`: a token of the text, or a piece of the tool's input.
void render_block_delta(std::string& frame, const MessageAnswer& answer, std::size_t block,
                        std::size_t index);
void render_block_stop(std::string& frame, std::size_t block);
void render_message_delta(std::string& frame, const MessageAnswer& answer);
void render_message_stop(std::string& frame);

}  // namespace turnout::sim
