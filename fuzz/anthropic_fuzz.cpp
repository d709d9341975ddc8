// Every OpenAI <-> Anthropic translator in protocol/anthropic.hpp on the same bytes: the client
// request (parsed as the gateway parses requests), the upstream's answer, its error body and
// its event stream (split into events by SseSplitter and fed one by one, as the relay does).
#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/json_input.hpp"
#include "protocol/anthropic.hpp"
#include "protocol/sse.hpp"

namespace anthropic = turnout::protocol::anthropic;

namespace {

// Output must be JSON the gateway can send on: it is the body a client or provider receives.
void require_json_object(std::string_view text) {
    rapidjson::Document doc;
    turnout::base::JsonInputOptions options;
    options.reject_duplicate_keys = false;
    if (!turnout::base::parse_json_input(text, doc, options) || !doc.IsObject()) std::abort();
}

void translate_request(std::string_view text, std::size_t size) {
    rapidjson::Document request;
    if (!turnout::base::parse_json_input(text, request)) return;  // the gateway's 400
    (void)anthropic::stream_include_usage(request);
    // A target's `body:` is a JSON object from the config; fast mode is the real use.
    const std::string_view extra = size % 2 == 0 ? std::string_view{} : R"({"speed":"fast"})";
    const auto translated = anthropic::translate_request(request, "claude-x", 1024, extra);
    if (translated.error.empty()) require_json_object(translated.body);
}

void translate_stream(std::string_view text, bool include_usage) {
    anthropic::StreamTranslator translator("req-1", "model-for-client", include_usage);
    turnout::protocol::SseSplitter splitter;
    splitter.feed(text);
    while (auto event = splitter.next_event()) {
        const bool was_over = translator.failed() || translator.finished();
        const std::string frames = translator.on_event(*event);
        if (was_over && !frames.empty()) std::abort();  // events after the end are ignored
        (void)translator.assembled_text();
        (void)translator.finish_reason();
    }
    // The part after the last blank line, as the relay sees it when the upstream closes.
    (void)translator.on_event(text.substr(text.size() - splitter.pending_bytes()));
    (void)translator.usage().prompt_tokens();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    translate_request(text, size);

    const auto response = anthropic::translate_response(text, "req-1", "model-for-client");
    if (response.error.empty()) require_json_object(response.body);

    // 529 and 520 are Anthropic/Cloudflare statuses Beast does not name.
    static constexpr unsigned kStatuses[] = {400, 401, 429, 500, 520, 529, 0, 999};
    require_json_object(anthropic::translate_error(text, kStatuses[size % 8]));

    (void)anthropic::finish_reason_for(text);
    translate_stream(text, size % 3 == 0);
    return 0;
}
