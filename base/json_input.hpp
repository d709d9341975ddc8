#pragma once
/// The one way JSON from outside (client requests, upstream answers, judge replies, eval
/// lines, state files) becomes a rapidjson::Document: parsed iteratively, nesting bounded, and
/// duplicate keys refused. RapidJSON copies, compares and serialises recursively, so a value
/// deeper than the bound could overflow the stack later; a duplicate key means two readers of
/// the same bytes (turnout, first-wins, and an upstream, last-wins) see different requests.
/// Plain C++, thread safe (no shared state).

#include <rapidjson/fwd.h>

#include <cstddef>
#include <string_view>

namespace turnout::base {

/// Nesting bound for outside JSON. Real requests (JSON schemas included) nest a few dozen
/// levels at most.
inline constexpr int kMaxJsonDepth = 128;

enum class JsonInputError {
    none,
    syntax,         ///< not JSON (or empty)
    too_deep,       ///< nested deeper than max_depth
    duplicate_key,  ///< an object names the same member twice
};

struct JsonInputOptions {
    int max_depth = kMaxJsonDepth;
    bool reject_duplicate_keys = true;
    /// Comments, trailing commas, NaN and Infinity: how judges write JSON.
    bool lenient = false;
    /// Exact decimal to double conversion (state files, eval reports).
    bool full_precision = false;
};

struct JsonInputResult {
    JsonInputError error = JsonInputError::none;
    std::size_t offset = 0;  ///< byte offset where parsing stopped, when error != none
    explicit operator bool() const { return error == JsonInputError::none; }
};

/// Parses `text` into `document`. On error, `document` is left null. Never recurses deeper
/// than a constant: safe on any input.
JsonInputResult parse_json_input(std::string_view text, rapidjson::Document& document,
                                 const JsonInputOptions& options = {});

/// The same checks without building a document (for callers with their own document type,
/// which then parse with rapidjson::kParseIterativeFlag).
JsonInputResult check_json_input(std::string_view text, const JsonInputOptions& options = {});

/// A short message for a client ("nested deeper than 128 levels", "duplicate key", ...).
std::string_view describe(JsonInputError error);

}  // namespace turnout::base
