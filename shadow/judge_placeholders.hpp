#pragma once
/// Internal to shadow/: the judge template's placeholders, as the template checks and the
/// prompt rendering find them.

#include <algorithm>
#include <array>
#include <string_view>

namespace turnout::shadow::detail {

inline constexpr std::array<std::string_view, 5> kPlaceholders = {
    "{{PASS_SCORE}}", "{{BOUNDARY}}", "{{REQUEST}}", "{{ANSWER_A}}", "{{ANSWER_B}}"};

/// The placeholder starting at `text[0]` ("{{NAME}}", NAME of [A-Z0-9_]), or empty when there
/// is none; it need not be one of kPlaceholders.
inline std::string_view placeholder_at(std::string_view text) {
    if (!text.starts_with("{{")) return {};
    const std::size_t end = text.find("}}", 2);
    if (end == std::string_view::npos) return {};
    const std::string_view name = text.substr(2, end - 2);
    const bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    return word ? text.substr(0, end + 2) : std::string_view{};
}

}  // namespace turnout::shadow::detail
