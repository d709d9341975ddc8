#pragma once
/// Internal to the Anthropic request translation (anthropic_request.cpp), not part of its
/// interface: OpenAI `messages` -> Anthropic `system` text and alternating `messages` turns, with
/// their content blocks (text, images, tool calls, tool results).

#include <string>

#include "protocol/anthropic_json.hpp"

namespace turnout::protocol::anthropic::detail {

struct Conversation {
    Value messages;      ///< Anthropic `messages`, allocated with the allocator passed in
    std::string system;  ///< system and developer messages joined by blank lines; "" for none
    std::string error;   ///< non-empty: the request's problem (a 400); the rest is then empty
};

/// Converts the OpenAI `messages` of `request` (an object).
Conversation convert_conversation(const Value& request, Allocator& alloc);

}  // namespace turnout::protocol::anthropic::detail
