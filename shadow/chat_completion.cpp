#include "shadow/chat_completion.hpp"

#include "base/json_input.hpp"
#include "shadow/json_util.hpp"

namespace turnout::shadow::detail {

ChatCompletion::ChatCompletion(std::string_view body) {
    if (!base::parse_json_input(body, document_) || !document_.IsObject()) return;
    const rapidjson::Value* choices = member(document_, "choices");
    if (choices == nullptr || !choices->IsArray() || choices->Empty()) return;
    choice_ = &(*choices)[0];
    for (const auto& choice : choices->GetArray()) {
        const rapidjson::Value* index = member(choice, "index");
        if (index != nullptr && index->IsUint64() && index->GetUint64() == 0) {
            choice_ = &choice;
            break;
        }
    }
    const rapidjson::Value* message = member(*choice_, "message");
    if (message != nullptr && message->IsObject()) message_ = message;
}

std::string content_text(const rapidjson::Value* content) {
    if (content == nullptr) return {};
    if (content->IsString()) return std::string(view(*content));
    std::string out;
    if (!content->IsArray()) return out;
    for (const auto& part : content->GetArray()) {
        std::string_view text = string_member(part, "text");
        if (text.empty()) text = string_member(part, "refusal");
        if (text.empty()) continue;
        out.append(text);
    }
    return out;
}

}  // namespace turnout::shadow::detail
