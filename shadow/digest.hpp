#pragma once
/// SHA-256 as lowercase hex: prompt hashes (`turnout eval`) and the judge template's hash (the
/// evidence fingerprint).

#include <string>
#include <string_view>

namespace turnout::shadow {

/// Lowercase hex SHA-256 (64 characters); "" only if OpenSSL fails.
std::string sha256_hex(std::string_view text);

}  // namespace turnout::shadow
