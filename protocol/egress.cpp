#include "protocol/egress.hpp"

#include <rapidjson/document.h>

#include "base/json_input.hpp"
#include "protocol/anthropic.hpp"
#include "protocol/sse.hpp"

namespace turnout::protocol {
namespace {

// Upstream answers are read for usage only: depth bounded, duplicate keys tolerated.
constexpr base::JsonInputOptions kUpstreamJson{.reject_duplicate_keys = false};

/// The usage an OpenAI answer or usage chunk reports, when it reports any (zeros are no news).
void take_usage(std::string_view json, Usage& usage) {
    rapidjson::Document document;
    if (!base::parse_json_input(json, document, kUpstreamJson)) return;
    const Usage reported = openai_usage(document);
    if (reported.input != 0 || reported.output != 0) usage = reported;
}

Usage usage_of(const anthropic::Usage& usage) {
    return {usage.prompt_tokens(), usage.output_tokens};
}

// --- OpenAI: passthrough ------------------------------------------------------------------

class OpenAiRelay final : public EventRelay {
  public:
    explicit OpenAiRelay(bool include_usage) : include_usage_(include_usage) {}

    std::string on_event(std::string_view event) override {
        // Only a client that asked for usage gets the usage chunk; the others cost no parse.
        if (include_usage_ && event.find("\"usage\"") != std::string_view::npos) {
            take_usage(sse_event_data(event), usage_);
        }
        return std::string(event);
    }
    Usage usage() const override { return usage_; }

  private:
    bool include_usage_;
    Usage usage_;
};

class OpenAiEgress final : public Egress {
  public:
    bool serves(std::string_view) const override { return true; }

    Answer answer(unsigned status, std::string body, std::string_view,
                  std::string_view) const override {
        Answer answer;
        if (status == 200) take_usage(body, answer.usage);
        answer.body = std::move(body);
        return answer;
    }

    std::unique_ptr<EventRelay> relay(StreamContext context) const override {
        return std::make_unique<OpenAiRelay>(context.include_usage);
    }
};

// --- Anthropic Messages, translated to OpenAI chat -----------------------------------------

class AnthropicRelay final : public EventRelay {
  public:
    explicit AnthropicRelay(StreamContext context)
        : translator_(std::move(context.request_id), std::move(context.model_for_client),
                      context.include_usage) {}

    std::string on_event(std::string_view event) override { return translator_.on_event(event); }
    bool failed() const override { return translator_.failed(); }
    Usage usage() const override { return usage_of(translator_.usage()); }
    std::optional<std::string> speed() const override { return translator_.speed(); }

  private:
    anthropic::StreamTranslator translator_;
};

class AnthropicEgress final : public Egress {
  public:
    bool serves(std::string_view suffix) const override { return suffix == "/chat/completions"; }

    Answer answer(unsigned status, std::string body, std::string_view request_id,
                  std::string_view model_for_client) const override {
        Answer answer;
        answer.json_content_type = true;
        if (status != 200) {
            answer.body = anthropic::translate_error(body, status);
            return answer;
        }
        auto translated = anthropic::translate_response(body, request_id, model_for_client);
        if (!translated.error.empty()) {
            answer.unusable = true;
            answer.problem = std::move(translated.error);
            return answer;
        }
        answer.body = std::move(translated.body);
        answer.usage = usage_of(translated.usage);
        answer.speed = std::move(translated.speed);
        return answer;
    }

    std::unique_ptr<EventRelay> relay(StreamContext context) const override {
        return std::make_unique<AnthropicRelay>(std::move(context));
    }
};

}  // namespace

const Egress& egress_for(config::ProviderKind kind) {
    static const OpenAiEgress openai;
    static const AnthropicEgress anthropic;
    return kind == config::ProviderKind::anthropic ? static_cast<const Egress&>(anthropic) : openai;
}

}  // namespace turnout::protocol
