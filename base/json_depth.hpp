#pragma once
/// A nesting bound for JSON from outside (requests, upstream answers, judge replies): parse
/// iteratively, then check the depth before any recursive walk over the value.

#include <rapidjson/document.h>

namespace turnout::base {

/// True when `value` nests no deeper than `budget` levels. Recurses at most `budget` deep.
inline bool json_within_depth(const rapidjson::Value& value, int budget) {
    if (budget < 0) return false;
    if (value.IsObject()) {
        for (const auto& member : value.GetObject()) {
            if (!json_within_depth(member.value, budget - 1)) return false;
        }
    } else if (value.IsArray()) {
        for (const auto& element : value.GetArray()) {
            if (!json_within_depth(element, budget - 1)) return false;
        }
    }
    return true;
}

}  // namespace turnout::base
