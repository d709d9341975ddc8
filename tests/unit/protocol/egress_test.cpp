// The provider-adapter seam: what the proxy gets back from each provider kind's Egress for
// whole answers and SSE events.

#include "protocol/egress.hpp"

#include <gtest/gtest.h>

#include <string>

namespace turnout::protocol {
namespace {

const Egress& openai() { return egress_for(config::ProviderKind::openai); }
const Egress& anthropic() { return egress_for(config::ProviderKind::anthropic); }

TEST(Egress, OpenAiServesEveryPathAndPassesAnswersThroughWithTheirUsage) {
    EXPECT_TRUE(openai().serves("/chat/completions"));
    EXPECT_TRUE(openai().serves("/embeddings"));
    const std::string body =
        R"({"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5}})";
    const Answer answer = openai().answer(200, body, "req-1", "m");
    EXPECT_EQ(answer.body, body);  // byte for byte
    EXPECT_FALSE(answer.json_content_type);
    EXPECT_FALSE(answer.unusable);
    EXPECT_EQ(answer.usage.input, 12u);
    EXPECT_EQ(answer.usage.output, 5u);
    // An error answer is passed on as it is, and read for nothing.
    const Answer failed = openai().answer(500, "upstream broke", "req-1", "m");
    EXPECT_EQ(failed.body, "upstream broke");
    EXPECT_EQ(failed.usage.input, 0u);
}

TEST(Egress, OpenAiStreamsPassThroughAndReadUsageOnlyWhenAsked) {
    const std::string usage_event =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n";
    auto asked = openai().relay({"req-1", "m", true});
    EXPECT_EQ(asked->on_event(usage_event), usage_event);
    EXPECT_EQ(asked->usage().input, 7u);
    EXPECT_EQ(asked->usage().output, 3u);
    EXPECT_FALSE(asked->failed());
    auto not_asked = openai().relay({"req-1", "m", false});
    EXPECT_EQ(not_asked->on_event(usage_event), usage_event);
    EXPECT_EQ(not_asked->usage().input, 0u);
}

TEST(Egress, AnthropicServesOnlyChatAndTranslatesAnswersAndErrors) {
    EXPECT_TRUE(anthropic().serves("/chat/completions"));
    EXPECT_FALSE(anthropic().serves("/embeddings"));
    const Answer answer = anthropic().answer(
        200,
        R"({"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],)"
        R"("stop_reason":"end_turn","usage":{"input_tokens":10,"cache_read_input_tokens":4,)"
        R"("output_tokens":2,"speed":"fast"}})",
        "req-1", "claude");
    ASSERT_FALSE(answer.unusable) << answer.problem;
    EXPECT_TRUE(answer.json_content_type);
    EXPECT_NE(answer.body.find("\"chat.completion\""), std::string::npos) << answer.body;
    EXPECT_EQ(answer.usage.input, 14u);  // cached input counts as prompt tokens
    EXPECT_EQ(answer.usage.output, 2u);
    EXPECT_EQ(answer.speed, "fast");
    const Answer error = anthropic().answer(
        529, R"({"type":"error","error":{"type":"overloaded_error","message":"busy"}})", "req-1",
        "claude");
    EXPECT_FALSE(error.unusable);
    EXPECT_NE(error.body.find("\"overloaded_error\""), std::string::npos) << error.body;
    const Answer broken = anthropic().answer(200, "not json", "req-1", "claude");
    EXPECT_TRUE(broken.unusable);
    EXPECT_FALSE(broken.problem.empty());
}

TEST(Egress, AnthropicStreamsAreTranslatedAndFailInBand) {
    auto relay = anthropic().relay({"req-1", "claude", false});
    const std::string out = relay->on_event(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"usage\":{\"input_tokens\":9,\"output_tokens\":0}}}\n\n");
    EXPECT_NE(out.find("chat.completion.chunk"), std::string::npos) << out;
    EXPECT_EQ(relay->usage().input, 9u);
    EXPECT_FALSE(relay->failed());
    const std::string failure = relay->on_event("event: error\ndata: not json\n\n");
    EXPECT_TRUE(relay->failed());
    EXPECT_NE(failure.find("\"error\""), std::string::npos) << failure;
}

}  // namespace
}  // namespace turnout::protocol
