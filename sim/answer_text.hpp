#pragma once
/// What every API's answer shares: its identity, the generated words, the degraded marker and
/// the tool call's arguments. Plain C++.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sim/plan.hpp"

namespace turnout::sim {

inline constexpr std::string_view kDefaultText =
    "The simulated model answers promptly and politely, one token at a time.";
inline constexpr std::string_view kDefaultModel = "sim-model";
inline constexpr std::string_view kJson = "application/json";

// Appended to the last token of a degraded answer; the judge role scores answers holding the
// tag low.
inline constexpr std::string_view kDegradedMarker = " [degraded]";
inline constexpr std::string_view kDegradedTag = "[degraded]";

// A called tool's arguments, streamed in pieces.
inline constexpr std::string_view kToolArguments = R"({"query":"simulated"})";
inline constexpr std::size_t kToolArgumentPieces = 4;

/// The identity shared by every chunk of one answer.
struct Reply {
    std::uint64_t id = 0;
    std::int64_t created = 0;
    std::string_view model;
    std::size_t prompt_tokens = 0;
};

/// Token `index` of the answer, escaped for a JSON string: a word and a space, or for the last
/// token the word and, when degraded, the marker.
void append_token(std::string& out, const Generation& gen, std::size_t index);

/// All of the answer's tokens as a quoted JSON string.
void append_content(std::string& out, const Generation& gen);

/// Piece `index` (of kToolArgumentPieces) of kToolArguments.
std::string_view tool_argument_piece(std::size_t index);

}  // namespace turnout::sim
