#include "shadow/json_util.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "base/json_input.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow::detail {

using rapidjson::Value;

bool parse_object(std::string_view text, rapidjson::Document& doc) {
    constexpr base::JsonInputOptions kOptions{.full_precision = true};
    return base::parse_json_input(text, doc, kOptions) && doc.IsObject();
}

std::string_view view(const Value& string) {
    return {string.GetString(), string.GetStringLength()};
}

const Value* member(const Value& object, std::string_view name) {
    if (!object.IsObject()) return nullptr;
    const auto it = object.FindMember(Value(rapidjson::StringRef(name.data(), name.size())));
    return it == object.MemberEnd() ? nullptr : &it->value;
}

const Value* member_ci(const Value& object, std::string_view name) {
    if (const Value* exact = member(object, name)) return exact;
    if (!object.IsObject()) return nullptr;
    for (const auto& entry : object.GetObject()) {
        if (entry.name.IsString() && iequals(view(entry.name), name)) return &entry.value;
    }
    return nullptr;
}

std::string_view string_member(const Value& object, std::string_view name) {
    const Value* value = member(object, name);
    return value != nullptr && value->IsString() ? view(*value) : std::string_view{};
}

std::string json_text(const Value& value) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    value.Accept(writer);
    return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace turnout::shadow::detail
