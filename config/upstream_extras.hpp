#pragma once
/// Internal to the loader: `headers:` and `body:`, what a provider, a target or a judge adds
/// to each upstream request.

#include <map>
#include <string>

#include "config/diagnostics.hpp"

namespace turnout::config::detail {

/// `headers:` into `out`: RFC 9110 names, no two differing only in case, values without CR,
/// LF or NUL. Names as written, or lower-cased when `lower_case` (match rules compare them so).
void read_headers(Diagnostics& diag, const Field& f, std::map<std::string, std::string>& out,
                  bool lower_case);

/// `body:` as the text of one JSON object; "" when absent, null or without fields. Plain
/// scalars are typed as YAML 1.2's core schema types them; the fields the gateway derives
/// from the client's request (model, messages, stream) are refused at the top level.
void read_extra_body(Diagnostics& diag, const Field& f, std::string& out);

}  // namespace turnout::config::detail
