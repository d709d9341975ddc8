#pragma once
/// Internal to the Anthropic translation (protocol/anthropic_*.cpp), not part of its interface:
/// reading untrusted JSON without crashing on wrong types, and writing JSON text.

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <string>
#include <string_view>

#include "base/json_input.hpp"

namespace turnout::protocol::anthropic::detail {

using rapidjson::Document;
using rapidjson::SizeType;
using rapidjson::Value;
using Allocator = Document::AllocatorType;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// RapidJSON copies, compares and serialises recursively: deeper input could overflow the stack.
// Real requests (JSON schemas included) nest a few dozen levels at most.
inline constexpr int kMaxDepth = base::kMaxJsonDepth;

/// Upstream answers and already-checked client bodies: depth bounded, duplicate keys tolerated
/// (the session refuses them in client requests before any translation).
inline bool parse_untrusted(Document& doc, std::string_view text) {
    constexpr base::JsonInputOptions kOptions{.max_depth = kMaxDepth,
                                              .reject_duplicate_keys = false};
    return static_cast<bool>(base::parse_json_input(text, doc, kOptions));
}

inline std::string_view view(const Value& string) {
    return {string.GetString(), string.GetStringLength()};
}

/// The member `name` of `object`; nullptr when `object` is no object or lacks it.
inline const Value* member(const Value& object, const char* name) {
    if (!object.IsObject()) return nullptr;
    const auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
}

/// The string member `name` of `object`; nullopt when absent or of another type.
inline std::optional<std::string_view> string_member(const Value& object, const char* name) {
    const Value* value = member(object, name);
    if (value == nullptr || !value->IsString()) return std::nullopt;
    return view(*value);
}

/// The same for an object that may itself be missing (a `member()` result).
inline std::optional<std::string_view> string_member(const Value* object, const char* name) {
    return object != nullptr ? string_member(*object, name) : std::nullopt;
}

/// `path[index]`, for error messages that name the offending element.
inline std::string indexed(const std::string& path, SizeType index) {
    return path + "[" + std::to_string(index) + "]";
}

inline bool is_absent(const Value* value) { return value == nullptr || value->IsNull(); }

inline bool is_blank(std::string_view text) {
    return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

/// A string value holding a copy of `text`.
inline Value string_value(std::string_view text, Allocator& alloc) {
    return Value(text.data(), static_cast<SizeType>(text.size()), alloc);
}

inline void put(JsonWriter& writer, std::string_view text) {
    writer.String(text.data(), static_cast<SizeType>(text.size()));
}

/// The JSON text that `write(JsonWriter&)` produces.
template <typename Write>
std::string write_json(Write&& write) {
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    write(writer);
    return {buffer.GetString(), buffer.GetSize()};
}

inline std::string to_json(const Value& value) {
    return write_json([&](JsonWriter& writer) { value.Accept(writer); });
}

}  // namespace turnout::protocol::anthropic::detail
