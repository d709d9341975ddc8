#pragma once
/// Internal to shadow/: how `turnout eval` reads JSON from outside and writes numbers and text
/// into its console summary, report.md and scores.svg.

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "base/json_input.hpp"

namespace turnout::shadow::detail {

/// Prompt lines, report lines and requests: exact numbers (the hash of a request must not
/// depend on rounding), duplicate keys refused (two readers would see two requests), and no
/// deeper than 64 (no chat request is; the bound keeps the recursive canonical writer safe).
base::JsonInputResult parse_eval_json(std::string_view text, rapidjson::Document& document);

/// `value` with `decimals` decimals; "inf", "-inf" or "nan" when not finite.
std::string fixed(double value, int decimals);
/// A share as a percentage with one decimal: "91.7%".
std::string percent(double share);
/// "$0.0123", "-$0.0040".
std::string usd(double value);
/// "812.5 ms".
std::string millis(double value);
/// "97", "97.5": scores are mostly integers.
std::string number_text(double value);
/// number_text of the score, "-" without one.
std::string score_text(const std::optional<double>& score);
/// One line of text: line breaks and tabs become spaces.
std::string one_line(std::string_view text);
/// One line, at most `limit` bytes, '|' escaped: a Markdown table cell.
std::string markdown_cell(std::string_view text, std::size_t limit);
std::string xml_escape(std::string_view text);
/// `value`, or 0 when it is not finite.
double finite(double value);

}  // namespace turnout::shadow::detail
