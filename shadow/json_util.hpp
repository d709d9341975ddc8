#pragma once
/// Internal to shadow/: JSON objects read from the store's files, tolerant reads of parsed JSON
/// (any value may have any type: absent or mistyped members read as nullptr or empty) and
/// compact serialisation.

#include <rapidjson/document.h>

#include <string>
#include <string_view>

namespace turnout::shadow::detail {

/// `text` parsed by the shared bounded reader into `doc`, at full precision (saved statistics
/// come back bit for bit); true when it is a JSON object. A corrupt or hostile file or line is
/// then skipped, never a crash.
bool parse_object(std::string_view text, rapidjson::Document& doc);

/// The text of a JSON string value.
std::string_view view(const rapidjson::Value& string);

/// The member `name` of `object`; nullptr when `object` is no object or lacks it.
const rapidjson::Value* member(const rapidjson::Value& object, std::string_view name);

/// The member `name`, matched exactly, else case-insensitively ("Score"); nullptr when
/// `object` is no object or has neither.
const rapidjson::Value* member_ci(const rapidjson::Value& object, std::string_view name);

/// The string member `name` of `object`; empty when absent or not a string.
std::string_view string_member(const rapidjson::Value& object, std::string_view name);

/// The value as compact JSON text (depth already checked by the parser).
std::string json_text(const rapidjson::Value& value);

}  // namespace turnout::shadow::detail
