#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <utility>
#include <vector>

#include "protocol/anthropic.hpp"
#include "tests/unit/protocol/golden/golden.hpp"

namespace turnout::protocol::anthropic {
namespace {

/// An Anthropic message with `content_json` blocks, `stop_reason_json` and `usage_json`.
std::string message(const std::string& content_json, const std::string& stop_reason_json,
                    const std::string& usage_json = R"({"input_tokens":10,"output_tokens":5})") {
    return R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-4-6",
               "content":)" +
           content_json + R"(,"stop_reason":)" + stop_reason_json +
           R"(,"stop_sequence":null,"usage":)" + usage_json + "}";
}

/// The expected chat.completion (without `created`) for `message_json` and `finish_reason`.
std::string completion(const std::string& message_json, const std::string& finish_reason,
                       const std::string& usage_json =
                           R"({"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,
                               "prompt_tokens_details":{"cached_tokens":0}})") {
    return R"({"id":"chatcmpl-msg_1","object":"chat.completion","model":"smart",
               "choices":[{"index":0,"message":)" +
           message_json + R"(,"logprobs":null,"finish_reason":")" + finish_reason +
           R"("}],"usage":)" + usage_json + "}";
}

::testing::AssertionResult translates_to(const std::string& anthropic_json,
                                         const std::string& openai_json) {
    const ResponseTranslation result = translate_response(anthropic_json, "req-1", "smart");
    if (!result.error.empty()) return ::testing::AssertionFailure() << "error: " << result.error;
    return golden::json_equal(result.body, openai_json, true);
}

TEST(AnthropicResponse, GoldenTextAndTools) {
    // Thinking dropped, text blocks joined, two tool calls with compact arguments, cache usage.
    const ResponseTranslation result = translate_response(
        golden::read("response_text_and_tools.anthropic.json"), "req-1", "smart");
    ASSERT_EQ(result.error, "");
    EXPECT_TRUE(
        golden::json_equal(result.body, golden::read("response_text_and_tools.openai.json"), true));
    EXPECT_EQ(result.usage.input_tokens, 120u);
    EXPECT_EQ(result.usage.output_tokens, 85u);
    EXPECT_EQ(result.usage.cache_read_input_tokens, 2000u);
    EXPECT_EQ(result.usage.cache_creation_input_tokens, 30u);
    EXPECT_EQ(result.usage.prompt_tokens(), 2150u);
    EXPECT_FALSE(result.speed.has_value());
}

TEST(AnthropicResponse, TextOnly) {
    EXPECT_TRUE(translates_to(message(R"([{"type":"text","text":"Hello!"}])", R"("end_turn")"),
                              completion(R"({"role":"assistant","content":"Hello!"})", "stop")));
}

TEST(AnthropicResponse, ExactBytesWithTextAndToolCalls) {
    // Byte for byte, member order included (the other tests compare parsed JSON).
    const ResponseTranslation result =
        translate_response(message(R"([{"type":"text","text":"On it."},
                    {"type":"tool_use","id":"toolu_1","name":"now","input":{"tz":"UTC"}}])",
                                   R"("tool_use")", R"({"input_tokens":10,"output_tokens":5,
                                     "cache_read_input_tokens":2})"),
                           "req-1", "smart");
    ASSERT_EQ(result.error, "");
    const std::string created = std::to_string(golden::parse(result.body)["created"].GetInt64());
    EXPECT_EQ(result.body,
              R"({"id":"chatcmpl-msg_1","object":"chat.completion","created":)" + created +
                  R"(,"model":"smart","choices":[{"index":0,"message":{"role":"assistant",)" +
                  R"("content":"On it.","tool_calls":[{"id":"toolu_1","type":"function",)" +
                  R"("function":{"name":"now","arguments":"{\"tz\":\"UTC\"}"}}]},)" +
                  R"("logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":12,)" +
                  R"("completion_tokens":5,"total_tokens":17,)" +
                  R"("prompt_tokens_details":{"cached_tokens":2}}})");
}

TEST(AnthropicResponse, ToolUseOnlyHasNullContent) {
    EXPECT_TRUE(translates_to(
        message(R"([{"type":"tool_use","id":"toolu_1","name":"now","input":{}}])", R"("tool_use")"),
        completion(R"({"role":"assistant","content":null,"tool_calls":[{"id":"toolu_1",
                       "type":"function","function":{"name":"now","arguments":"{}"}}]})",
                   "tool_calls")));
}

TEST(AnthropicResponse, NoContentIsEmptyText) {
    EXPECT_TRUE(translates_to(message("[]", R"("max_tokens")"),
                              completion(R"({"role":"assistant","content":""})", "length")));
}

TEST(AnthropicResponse, EachStopReason) {
    const std::pair<std::string, std::string> cases[] = {
        {R"("end_turn")", "stop"},
        {R"("stop_sequence")", "stop"},
        {R"("max_tokens")", "length"},
        {R"("tool_use")", "tool_calls"},
        {R"("refusal")", "content_filter"},
        {R"("pause_turn")", "stop"},
        {R"("model_context_window_exceeded")", "length"},
        {R"("a_future_reason")", "stop"},
        {"null", "stop"},
    };
    for (const auto& [stop_reason, finish_reason] : cases) {
        SCOPED_TRACE(stop_reason);
        EXPECT_TRUE(
            translates_to(message(R"([{"type":"text","text":"x"}])", stop_reason),
                          completion(R"({"role":"assistant","content":"x"})", finish_reason)));
    }
}

TEST(AnthropicResponse, FastModeSpeedAndCacheUsage) {
    const ResponseTranslation result =
        translate_response(message(R"([{"type":"text","text":"fast"}])", R"("end_turn")",
                                   R"({"input_tokens":3,"cache_read_input_tokens":100,
                    "cache_creation_input_tokens":7,"output_tokens":9,"speed":"fast"})"),
                           "req-1", "smart");
    ASSERT_EQ(result.error, "");
    EXPECT_EQ(result.speed, "fast");
    EXPECT_TRUE(golden::json_equal(
        result.body,
        completion(R"({"role":"assistant","content":"fast"})", "stop",
                   R"({"prompt_tokens":110,"completion_tokens":9,"total_tokens":119,
                       "prompt_tokens_details":{"cached_tokens":100}})"),
        true));
}

TEST(AnthropicResponse, IdFallsBackToTheRequestId) {
    const ResponseTranslation result = translate_response(
        R"({"type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn"})",
        "req-9", "smart");
    ASSERT_EQ(result.error, "");
    const rapidjson::Document body = golden::parse(result.body);
    ASSERT_TRUE(body.IsObject());
    EXPECT_STREQ(body["id"].GetString(), "chatcmpl-req-9");
    EXPECT_EQ(body["usage"]["total_tokens"].GetUint64(), 0u);
}

TEST(AnthropicResponse, UnusableBodiesAreErrors) {
    const std::vector<std::string> bodies = {"",
                                             "not json",
                                             "[]",
                                             "42",
                                             R"({"type":"error","error":{"type":"api_error"}})",
                                             R"({"type":"message","content":"text"})"};
    for (const std::string& body : bodies) {
        SCOPED_TRACE(body);
        const ResponseTranslation result = translate_response(body, "req-1", "smart");
        EXPECT_NE(result.error, "");
        EXPECT_EQ(result.body, "");
    }
}

TEST(AnthropicResponse, OddBlocksAndTypesDoNotCrash) {
    // Wrong types everywhere: blocks are skipped or defaulted, never dereferenced blindly.
    const ResponseTranslation result = translate_response(
        R"({"type":"message","id":7,"content":[1,null,{"type":5},{"type":"text","text":3},
            {"type":"tool_use","id":null,"name":[],"input":"x"},{"type":"server_tool_use"}],
            "stop_reason":9,"usage":{"input_tokens":-1,"output_tokens":"2","speed":1}})",
        "req-1", "smart");
    ASSERT_EQ(result.error, "");
    EXPECT_TRUE(golden::json_equal(
        result.body, R"({"id":"chatcmpl-req-1","object":"chat.completion","model":"smart",
            "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
                {"id":"","type":"function","function":{"name":"","arguments":"{}"}}]},
                "logprobs":null,"finish_reason":"stop"}],
            "usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,
                     "prompt_tokens_details":{"cached_tokens":0}}})",
        true));
    // Every prefix of a real answer either translates or is an error.
    const std::string golden_body = golden::read("response_text_and_tools.anthropic.json");
    for (std::size_t size = 0; size <= golden_body.size(); ++size) {
        const ResponseTranslation prefix =
            translate_response(std::string_view(golden_body).substr(0, size), "r", "m");
        EXPECT_NE(prefix.error.empty(), prefix.body.empty());
    }
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    EXPECT_NE(translate_response(R"({"type":"message","content":)" + deep + "}", "r", "m").error,
              "");
}

TEST(AnthropicError, EachAnthropicErrorType) {
    struct Case {
        unsigned status;
        std::string anthropic_type;
        std::string openai_type;
    };
    const Case cases[] = {
        {400, "invalid_request_error", "invalid_request_error"},
        {401, "authentication_error", "authentication_error"},
        {403, "permission_error", "permission_error"},
        {404, "not_found_error", "invalid_request_error"},
        {413, "request_too_large", "invalid_request_error"},
        {429, "rate_limit_error", "rate_limit_error"},
        {402, "billing_error", "insufficient_quota"},
        {500, "api_error", "server_error"},
        {529, "overloaded_error", "server_error"},
        {504, "timeout_error", "server_error"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.anthropic_type);
        const std::string body = R"({"type":"error","error":{"type":")" + c.anthropic_type +
                                 R"(","message":"Something \"went\" wrong"},"request_id":"req_1"})";
        EXPECT_TRUE(
            golden::json_equal(translate_error(body, c.status),
                               R"({"error":{"message":"Something \"went\" wrong","type":")" +
                                   c.openai_type + R"(","code":")" + c.anthropic_type + R"("}})"));
    }
}

TEST(AnthropicError, UnknownTypesAndOtherShapesFallBackToTheStatus) {
    EXPECT_TRUE(golden::json_equal(
        translate_error(R"({"type":"error","error":{"type":"new_error","message":"m"}})", 429),
        R"({"error":{"message":"m","type":"rate_limit_error","code":"new_error"}})"));
    EXPECT_TRUE(golden::json_equal(translate_error(R"({"error":"plain string"})", 401),
                                   R"({"error":{"message":"plain string",
                                       "type":"authentication_error","code":"http_401"}})"));
    EXPECT_TRUE(golden::json_equal(
        translate_error("<html>Bad Gateway</html>", 502),
        R"({"error":{"message":"the upstream answered HTTP 502: <html>Bad Gateway</html>",
            "type":"server_error","code":"http_502"}})"));
    EXPECT_TRUE(golden::json_equal(
        translate_error("", 403),
        R"({"error":{"message":"the upstream answered HTTP 403","type":"permission_error",
            "code":"http_403"}})"));
    EXPECT_TRUE(golden::json_equal(translate_error("{}", 418),
                                   R"({"error":{"message":"the upstream answered HTTP 418: {}",
            "type":"invalid_request_error","code":"http_418"}})"));
}

TEST(AnthropicError, ExactBytes) {
    EXPECT_EQ(translate_error(R"({"type":"error","error":{"type":"overloaded_error",
                                  "message":"Overloaded"},"request_id":"req_1"})",
                              529),
              R"({"error":{"message":"Overloaded","type":"server_error",)"
              R"("code":"overloaded_error"}})");
    EXPECT_EQ(translate_error("", 503),
              R"({"error":{"message":"the upstream answered HTTP 503","type":"server_error",)"
              R"("code":"http_503"}})");
}

TEST(AnthropicError, LongBodiesAreCutOnACharacterBoundary) {
    std::string body = "x";
    for (int i = 0; i < 400; ++i) body += "\xC3\xA9";  // é, two bytes each
    const rapidjson::Document error = golden::parse(translate_error(body, 500));
    ASSERT_TRUE(error.IsObject());
    const std::string message = error["error"]["message"].GetString();
    EXPECT_LT(message.size(), 400u);
    // "...HTTP 500: x" then whole two-byte characters only.
    const std::string quoted = message.substr(message.find(": ") + 2);
    EXPECT_EQ(quoted.size() % 2, 1u);
    EXPECT_EQ(static_cast<unsigned char>(quoted.back()), 0xA9);
}

}  // namespace
}  // namespace turnout::protocol::anthropic
