#pragma once
/// JSON rendered by hand into reused strings: the benchmark must never be bounded by the
/// simulator, so answers are appended piece by piece with no DOM and no allocation once the
/// strings have grown. Plain C++.

#include <cstdint>
#include <string>
#include <string_view>

namespace turnout::sim {

void append_number(std::string& out, std::uint64_t value);

/// The shortest text that reads back as `value`.
void append_double(std::string& out, double value);

/// Six digits after the point.
void append_fixed(std::string& out, double value);

/// Escapes for a JSON string, without the quotes; bytes >= 0x80 pass through (the inputs are
/// UTF-8 JSON).
void append_escaped(std::string& out, std::string_view text);

/// A quoted, escaped JSON string.
void append_json_string(std::string& out, std::string_view text);

}  // namespace turnout::sim
