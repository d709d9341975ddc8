#pragma once
/// Values from the command line and from x-sim-* headers, parsed strictly: the whole text or
/// nothing. Plain C++.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace turnout::sim {

/// What split_words splits at, and what JSON text may be padded with.
inline constexpr std::string_view kWhitespace = " \t\r\n";

/// An integer or a double spelling all of `text` (no sign prefix `+`, no spaces).
template <class T>
bool parse_number(std::string_view text, T& out) {
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return !text.empty() && ec == std::errc() && ptr == end;
}

/// An integer from `low` to `high`; `out` is left alone otherwise.
bool parse_bounded(std::string_view text, std::int64_t low, std::int64_t high, std::int64_t& out);

/// Tokens per second: 0 (instant) or at least 0.001, so the pacing interval stays finite.
bool parse_rate(std::string_view text, double& out);

/// A share from 0 to 1.
bool parse_share(std::string_view text, double& out);

/// 1/true/yes or 0/false/no.
bool parse_flag(std::string_view text, bool& out);

/// An HTTP status from 200 to 599. A 2xx status means "no fault" (0), so a header can switch
/// off --fault-status for one request.
bool parse_status(std::string_view text, int& out);

/// The words of `text`, split at whitespace, into `out` (cleared first).
void split_words(std::string_view text, std::vector<std::string>& out);

}  // namespace turnout::sim
