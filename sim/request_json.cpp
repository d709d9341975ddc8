#include "sim/request_json.hpp"

#include "base/json_input.hpp"

namespace turnout::sim {

std::string_view parse_object(std::string_view body, Document& doc) {
    const auto parsed = base::check_json_input(body);
    if (!parsed) {
        return base::describe(parsed.error);
    }
    doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject()) {
        return "the request body is not a JSON object";
    }
    return {};
}

const rapidjson::Value* find(const rapidjson::Value& object, const char* name) {
    const auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string_view view(const rapidjson::Value& value) {
    return {value.GetString(), value.GetStringLength()};
}

std::string_view string_member(const rapidjson::Value& object, const char* name,
                               std::string_view fallback) {
    const rapidjson::Value* value = find(object, name);
    return value != nullptr && value->IsString() ? view(*value) : fallback;
}

bool bool_member(const rapidjson::Value& object, const char* name) {
    const rapidjson::Value* value = find(object, name);
    return value != nullptr && value->IsBool() && value->GetBool();
}

}  // namespace turnout::sim
