#pragma once
/// Internal to the loader: parsers and printers of single values, with no YAML. The public
/// value parsers (parse_duration, parse_size, parse_upstream_url) are declared in loader.hpp
/// and defined in values.cpp too.

#include <cstdint>
#include <string>
#include <string_view>

namespace turnout::config::detail {

/// Decimal digits only, no sign, no spaces; false on overflow.
bool parse_uint(std::string_view text, std::uint64_t& out);
/// A finite number, plain or with an exponent; '-' allowed, '+' not.
bool parse_double(std::string_view text, double& out);

/// true or false as YAML 1.2's core schema writes them ("true", "True", "TRUE", ...).
bool parse_bool(std::string_view text, bool& out);

/// ASCII lower case.
std::string to_lower(std::string_view text);

/// 'text', quoted as the messages quote what the user wrote.
std::string in_quotes(std::string_view text);
/// A number as the messages print it (0.9, 100, 1e+06).
std::string format_number(double value);

/// "HOST:PORT" with port 0..65535 (0 = ephemeral); IPv6 hosts in brackets. "" when fine,
/// else the message.
std::string listen_error(std::string_view text);

}  // namespace turnout::config::detail
