#pragma once
/// A Messages API request (--kind anthropic, anthropic-version 2023-06-01): validated like the
/// real API validates it, and what it asks the simulator for. Plain C++.

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::sim {

/// The fields of a Messages request the simulator acts on; views into the parsed document.
struct MessagesRequest {
    std::string_view model;
    std::size_t max_tokens = 0;
    bool stream = false;
    std::optional<std::string_view> tool;  // the tool to call instead of answering
    std::string_view speed;                // the body's `speed`, if any
};

/// Validates a Messages (or, with `count_only`, count_tokens) request. On failure `problem`
/// holds the message, `path: message` like the real API's.
bool read_messages_request(const rapidjson::Value& request, bool count_only, MessagesRequest& out,
                           std::string& problem);

}  // namespace turnout::sim
