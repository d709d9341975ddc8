#pragma once
/// Internal to shadow/: reading an OpenAI chat.completion body (a model's answer, the judge's
/// reply) as the judge's functions all do.

#include <rapidjson/document.h>

#include <string>
#include <string_view>

namespace turnout::shadow::detail {

/// A chat.completion body parsed (the shared bounded reader) with its first choice and that
/// choice's message. Not copyable: the pointers point into the document.
class ChatCompletion {
  public:
    explicit ChatCompletion(std::string_view body);
    ChatCompletion(const ChatCompletion&) = delete;
    ChatCompletion& operator=(const ChatCompletion&) = delete;

    /// The body parsed as a JSON object.
    bool is_object() const { return document_.IsObject(); }
    /// choices[] entry with index 0 (the first entry when none says so); nullptr when absent.
    const rapidjson::Value* choice() const { return choice_; }
    /// choice().message when it is an object; nullptr otherwise.
    const rapidjson::Value* message() const { return message_; }

  private:
    rapidjson::Document document_;
    const rapidjson::Value* choice_ = nullptr;
    const rapidjson::Value* message_ = nullptr;
};

/// The text of a message `content`: a string, or the text (and refusal) of content parts.
std::string content_text(const rapidjson::Value* content);

}  // namespace turnout::shadow::detail
