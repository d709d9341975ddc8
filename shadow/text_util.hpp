#pragma once
/// Internal to shadow/: small text helpers shared by the judge, eval and the store.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace turnout::shadow::detail {

/// `text` without leading and trailing spaces, tabs, line breaks and form feeds.
std::string_view trim(std::string_view text);

char ascii_lower(char c);
/// Equal but for ASCII case.
bool iequals(std::string_view a, std::string_view b);

/// `text` cut to at most `limit` bytes without splitting a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t limit);
/// `text` when it fits in `limit` bytes, else its utf8_prefix followed by "...".
std::string shorten(std::string_view text, std::size_t limit);

/// Shortest decimal form of a double that reads back exactly: "95", "97.5", "94.99".
std::string shortest_number(double value);

/// [A-Za-z0-9_-]: the bytes that route file names and fence boundaries keep as they are.
bool is_name_char(unsigned char c);

/// Calls `visit(line_number, line)` for each '\n'-terminated line of `text` (1-based numbers;
/// the last line need not be terminated; a line keeps any '\r').
void for_each_line(std::string_view text,
                   const std::function<void(std::size_t, std::string_view)>& visit);

}  // namespace turnout::shadow::detail
