#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

#include "protocol/anthropic.hpp"
#include "tests/unit/protocol/golden/golden.hpp"

namespace turnout::protocol::anthropic {
namespace {

constexpr std::string_view kModel = "claude-opus-4-6";
constexpr std::uint32_t kDefaultMaxTokens = 4096;

RequestTranslation translate(const std::string& openai_json, std::string_view extra_body = {}) {
    const rapidjson::Document request = golden::parse(openai_json);
    EXPECT_FALSE(request.HasParseError()) << openai_json;
    return translate_request(request, kModel, kDefaultMaxTokens, extra_body);
}

/// Translates and compares with the expected Anthropic body; fails on a translation error.
::testing::AssertionResult translates_to(const std::string& openai_json,
                                         const std::string& anthropic_json,
                                         std::string_view extra_body = {}) {
    const RequestTranslation result = translate(openai_json, extra_body);
    if (!result.error.empty()) return ::testing::AssertionFailure() << "error: " << result.error;
    return golden::json_equal(result.body, anthropic_json);
}

/// Translates and expects an error that mentions `fragment`.
::testing::AssertionResult fails_with(const std::string& openai_json, std::string_view fragment) {
    const RequestTranslation result = translate(openai_json);
    if (result.error.empty()) return ::testing::AssertionFailure() << "translated: " << result.body;
    if (!result.body.empty()) return ::testing::AssertionFailure() << "body with an error";
    if (result.error.find(fragment) == std::string::npos) {
        return ::testing::AssertionFailure()
               << "error '" << result.error << "' lacks '" << fragment << "'";
    }
    return ::testing::AssertionSuccess();
}

/// A request whose messages are `messages_json`.
std::string with_messages(const std::string& messages_json, const std::string& more = "") {
    return R"({"model":"smart",)" + more + R"("messages":)" + messages_json + "}";
}

TEST(AnthropicRequest, GoldenConversation) {
    // System and developer messages, images by URL and base64, parallel tool calls, tool results
    // merged into one user turn, consecutive turns merged, tools, tool_choice, sampling, stop,
    // user, and the OpenAI-only fields that are left out.
    EXPECT_TRUE(translates_to(golden::read("request_conversation.openai.json"),
                              golden::read("request_conversation.anthropic.json")));
}

TEST(AnthropicRequest, MinimalRequestUsesTargetModelAndDefaultMaxTokens) {
    EXPECT_TRUE(translates_to(with_messages(R"([{"role":"user","content":"Hi"}])"),
                              R"({"model":"claude-opus-4-6","max_tokens":4096,
                                  "messages":[{"role":"user","content":"Hi"}]})"));
}

TEST(AnthropicRequest, MaxTokensAndMaxCompletionTokens) {
    const std::string messages = R"([{"role":"user","content":"Hi"}])";
    const std::string expected_prefix = R"({"model":"claude-opus-4-6","max_tokens":)";
    const std::string expected_suffix = R"(,"messages":[{"role":"user","content":"Hi"}]})";
    EXPECT_TRUE(translates_to(with_messages(messages, R"("max_tokens":300,)"),
                              expected_prefix + "300" + expected_suffix));
    EXPECT_TRUE(translates_to(with_messages(messages, R"("max_completion_tokens":200,)"),
                              expected_prefix + "200" + expected_suffix));
    EXPECT_TRUE(
        translates_to(with_messages(messages, R"("max_completion_tokens":null,"max_tokens":7,)"),
                      expected_prefix + "7" + expected_suffix));
    EXPECT_TRUE(fails_with(with_messages(messages, R"("max_tokens":0,)"), "max_tokens"));
    EXPECT_TRUE(fails_with(with_messages(messages, R"("max_tokens":-5,)"), "max_tokens"));
    EXPECT_TRUE(fails_with(with_messages(messages, R"("max_tokens":"100",)"), "max_tokens"));
    EXPECT_TRUE(fails_with(with_messages(messages, R"("max_completion_tokens":1.5,)"),
                           "max_completion_tokens"));
}

TEST(AnthropicRequest, ConsecutiveSameRoleMessagesAreMerged) {
    EXPECT_TRUE(translates_to(with_messages(R"([
        {"role":"user","content":"one"},{"role":"user","content":[{"type":"text","text":"two"}]},
        {"role":"assistant","content":"three"},{"role":"assistant","content":"four"},
        {"role":"user","content":"five"}])"),
                              R"({"model":"claude-opus-4-6","max_tokens":4096,"messages":[
        {"role":"user","content":[{"type":"text","text":"one"},{"type":"text","text":"two"}]},
        {"role":"assistant","content":[{"type":"text","text":"three"},
                                       {"type":"text","text":"four"}]},
        {"role":"user","content":"five"}]})"));
}

TEST(AnthropicRequest, SystemMessagesAnywhereAreHoistedInOrder) {
    EXPECT_TRUE(translates_to(with_messages(R"([
        {"role":"system","content":[{"type":"text","text":"Be brief."},
                                    {"type":"text","text":"Be kind."}]},
        {"role":"user","content":"Hi"},
        {"role":"developer","content":"Use metric units."},
        {"role":"user","content":"How tall is it?"}])"),
                              R"({"model":"claude-opus-4-6","max_tokens":4096,
        "system":"Be brief.\n\nBe kind.\n\nUse metric units.",
        "messages":[{"role":"user","content":[{"type":"text","text":"Hi"},
                                              {"type":"text","text":"How tall is it?"}]}]})"));
    EXPECT_TRUE(
        fails_with(with_messages(R"([{"role":"system","content":"only a system"}])"), "messages"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"system","content":[
        {"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},
        {"role":"user","content":"Hi"}])"),
                           "messages[0].content[0].type"));
}

TEST(AnthropicRequest, ToolResultsComeFirstInTheMergedUserTurn) {
    EXPECT_TRUE(translates_to(with_messages(R"([
        {"role":"user","content":"Weather?"},
        {"role":"assistant","tool_calls":[{"id":"t1","type":"function",
            "function":{"name":"weather","arguments":"{}"}}]},
        {"role":"user","content":"in Celsius please"},
        {"role":"tool","tool_call_id":"t1","content":"21"}])"),
                              R"({"model":"claude-opus-4-6","max_tokens":4096,"messages":[
        {"role":"user","content":"Weather?"},
        {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"weather","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"21"},
                                  {"type":"text","text":"in Celsius please"}]}]})"));
}

TEST(AnthropicRequest, ToolResultWithImageContent) {
    EXPECT_TRUE(translates_to(with_messages(R"([
        {"role":"assistant","tool_calls":[{"id":"t1","type":"function",
            "function":{"name":"screenshot","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"t1","content":[
            {"type":"text","text":"Here:"},
            {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}}]}])"),
                              R"({"model":"claude-opus-4-6","max_tokens":4096,"messages":[
        {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"screenshot",
                                        "input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[
            {"type":"text","text":"Here:"},
            {"type":"image","source":{"type":"base64","media_type":"image/jpeg",
                                      "data":"/9j/4AAQ"}}]}]}]})"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"tool","content":"x"}])"), "tool_call_id"));
}

TEST(AnthropicRequest, Images) {
    const std::string expected_prefix =
        R"({"model":"claude-opus-4-6","max_tokens":4096,"messages":[{"role":"user","content":[)";
    // A bare string image_url, media type parameters and an upper-case scheme.
    EXPECT_TRUE(translates_to(with_messages(R"([{"role":"user","content":[
        {"type":"image_url","image_url":"HTTPS://example.com/a.webp"},
        {"type":"image_url","image_url":{"url":"data:image/gif;name=x.gif;base64,R0lGOD"}}]}])"),
                              expected_prefix + R"(
        {"type":"image","source":{"type":"url","url":"HTTPS://example.com/a.webp"}},
        {"type":"image","source":{"type":"base64","media_type":"image/gif","data":"R0lGOD"}}
        ]}]})"));
    const auto image = [](const std::string& url) {
        return with_messages(
            R"([{"role":"user","content":[{"type":"image_url","image_url":{"url":")" + url +
            R"("}}]}])");
    };
    EXPECT_TRUE(fails_with(image("data:image/png,not-base64"), "messages[0].content[0].image_url"));
    EXPECT_TRUE(fails_with(image("data:;base64,AAAA"), "image_url"));
    EXPECT_TRUE(fails_with(image("data:image/png;base64,"), "image_url"));
    EXPECT_TRUE(fails_with(image("ftp://example.com/a.png"), "image_url"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"user","content":[{"type":"image_url"}]}])"),
                           "image_url.url"));
    // Assistants do not send images in OpenAI's API.
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"assistant","content":[
        {"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}])"),
                           "not supported"));
}

TEST(AnthropicRequest, UnsupportedContentPartsAreErrorsNotSilentlyDropped) {
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"user","content":[
        {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}])"),
                           "input_audio"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"user","content":[
        {"type":"file","file":{"file_id":"file-1"}}]}])"),
                           "'file'"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"user","content":[{"text":"no type"}]}])"),
                           "messages[0].content[0].type"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"user","content":[{"type":"text"}]}])"),
                           "messages[0].content[0].text"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"user","content":42}])"), "content"));
}

TEST(AnthropicRequest, AssistantRefusalPartIsKeptAsText) {
    EXPECT_TRUE(translates_to(with_messages(R"([{"role":"user","content":"Hi"},
        {"role":"assistant","content":[{"type":"refusal","refusal":"I can't help with that."}]},
        {"role":"user","content":"OK"}])"),
                              R"({"model":"claude-opus-4-6","max_tokens":4096,"messages":[
        {"role":"user","content":"Hi"},
        {"role":"assistant","content":"I can't help with that."},
        {"role":"user","content":"OK"}]})"));
}

TEST(AnthropicRequest, EmptyContentIsDropped) {
    EXPECT_TRUE(translates_to(with_messages(R"([{"role":"user","content":"Hi"},
        {"role":"assistant","content":""},{"role":"assistant","content":null},
        {"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"Again"}]}])"),
                              R"({"model":"claude-opus-4-6","max_tokens":4096,"messages":[
        {"role":"user","content":[{"type":"text","text":"Hi"},
                                  {"type":"text","text":"Again"}]}]})"));
}

TEST(AnthropicRequest, ToolArguments) {
    const auto call = [](const std::string& arguments_json) {
        return with_messages(R"([{"role":"user","content":"Go"},
            {"role":"assistant","content":"","tool_calls":[{"id":"t1","type":"function",
             "function":{"name":"f","arguments":)" +
                             arguments_json + R"(}}]}])");
    };
    const auto expected = [](const std::string& input_json) {
        return R"({"model":"claude-opus-4-6","max_tokens":4096,"messages":[
            {"role":"user","content":"Go"},
            {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":)" +
               input_json + "}]}]}";
    };
    EXPECT_TRUE(translates_to(call(R"("{\"a\":[1,{\"b\":null}],\"c\":\"\u00e9\"}")"),
                              expected(R"({"a":[1,{"b":null}],"c":"\u00e9"})")));
    EXPECT_TRUE(translates_to(call(R"("  ")"), expected("{}")));
    EXPECT_TRUE(translates_to(call("null"), expected("{}")));
    EXPECT_TRUE(
        translates_to(call(R"({"already":"an object"})"), expected(R"({"already":"an object"})")));
    EXPECT_TRUE(fails_with(call(R"("{\"a\":")"),
                           "messages[1].tool_calls[0].function.arguments: invalid JSON"));
    EXPECT_TRUE(fails_with(call(R"("{\"a\":1} trailing")"), "invalid JSON"));
    EXPECT_TRUE(fails_with(call(R"("[1,2]")"), "must encode a JSON object"));
    EXPECT_TRUE(fails_with(call(R"("\"text\"")"), "must encode a JSON object"));
    EXPECT_TRUE(fails_with(call("42"), "must be a string of JSON"));
}

TEST(AnthropicRequest, InvalidToolCalls) {
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"assistant","tool_calls":[
        {"type":"function","function":{"name":"f","arguments":"{}"}}]}])"),
                           "messages[0].tool_calls[0].id"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"assistant","tool_calls":[
        {"id":"t","type":"function","function":{"arguments":"{}"}}]}])"),
                           "function.name"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"assistant","tool_calls":[
        {"id":"t","type":"custom","custom":{"name":"f","input":"x"}}]}])"),
                           "tool_calls[0].type"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"assistant","tool_calls":{}}])"),
                           "tool_calls: must be an array"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"assistant","tool_calls":[7]}])"),
                           "tool_calls[0]: must be an object"));
}

TEST(AnthropicRequest, ToolChoice) {
    const std::string tools =
        R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],)";
    const auto request = [&](const std::string& more) {
        return with_messages(R"([{"role":"user","content":"Hi"}])", tools + more);
    };
    const auto expected = [](const std::string& choice) {
        return R"({"model":"claude-opus-4-6","max_tokens":4096,
            "messages":[{"role":"user","content":"Hi"}],
            "tools":[{"name":"f","input_schema":{"type":"object"}}])" +
               (choice.empty() ? "" : R"(,"tool_choice":)" + choice) + "}";
    };
    EXPECT_TRUE(translates_to(request(""), expected("")));
    EXPECT_TRUE(translates_to(request(R"("tool_choice":"auto",)"), expected(R"({"type":"auto"})")));
    EXPECT_TRUE(
        translates_to(request(R"("tool_choice":"required",)"), expected(R"({"type":"any"})")));
    EXPECT_TRUE(translates_to(request(R"("tool_choice":"none",)"), expected(R"({"type":"none"})")));
    EXPECT_TRUE(
        translates_to(request(R"("tool_choice":{"type":"function","function":{"name":"f"}},)"),
                      expected(R"({"type":"tool","name":"f"})")));
    EXPECT_TRUE(translates_to(request(R"("parallel_tool_calls":false,)"),
                              expected(R"({"type":"auto","disable_parallel_tool_use":true})")));
    EXPECT_TRUE(translates_to(request(R"("tool_choice":"required","parallel_tool_calls":false,)"),
                              expected(R"({"type":"any","disable_parallel_tool_use":true})")));
    EXPECT_TRUE(translates_to(request(R"("tool_choice":"none","parallel_tool_calls":false,)"),
                              expected(R"({"type":"none"})")));
    EXPECT_TRUE(translates_to(request(R"("parallel_tool_calls":true,)"), expected("")));
    EXPECT_TRUE(fails_with(request(R"("tool_choice":"sometimes",)"), "tool_choice"));
    EXPECT_TRUE(fails_with(request(R"("tool_choice":{"type":"function"},)"), "tool_choice"));
    EXPECT_TRUE(fails_with(request(R"("parallel_tool_calls":"no",)"), "parallel_tool_calls"));
    // Anthropic rejects tool_choice without tools.
    EXPECT_TRUE(translates_to(
        with_messages(R"([{"role":"user","content":"Hi"}])", R"("tool_choice":"auto","tools":[],)"),
        R"({"model":"claude-opus-4-6","max_tokens":4096,
            "messages":[{"role":"user","content":"Hi"}]})"));
}

TEST(AnthropicRequest, ToolDefinitions) {
    EXPECT_TRUE(translates_to(with_messages(R"([{"role":"user","content":"Hi"}])", R"("tools":[
        {"type":"function","function":{"name":"a","description":"","parameters":{"properties":{}}}},
        {"type":"function","function":{"name":"b","parameters":null}}],)"),
                              R"({"model":"claude-opus-4-6","max_tokens":4096,
        "messages":[{"role":"user","content":"Hi"}],
        "tools":[{"name":"a","input_schema":{"properties":{},"type":"object"}},
                 {"name":"b","input_schema":{"type":"object","properties":{}}}]})"));
    const auto tool = [](const std::string& tool_json) {
        return with_messages(R"([{"role":"user","content":"Hi"}])",
                             R"("tools":[)" + tool_json + "],");
    };
    EXPECT_TRUE(fails_with(tool(R"({"type":"web_search"})"), "tools[0].type"));
    EXPECT_TRUE(fails_with(tool(R"({"type":"function","function":{}})"), "tools[0].function.name"));
    EXPECT_TRUE(fails_with(tool(R"({"type":"function","function":{"name":"a","parameters":[]}})"),
                           "tools[0].function.parameters"));
    EXPECT_TRUE(fails_with(tool(R"({"type":"function","function":{"name":"a","description":1}})"),
                           "description"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"user","content":"Hi"}])", R"("tools":{},)"),
                           "tools: must be an array"));
}

TEST(AnthropicRequest, StopSequences) {
    const auto request = [](const std::string& stop) {
        return with_messages(R"([{"role":"user","content":"Hi"}])", R"("stop":)" + stop + ",");
    };
    const std::string base = R"({"model":"claude-opus-4-6","max_tokens":4096,
        "messages":[{"role":"user","content":"Hi"}])";
    EXPECT_TRUE(translates_to(request(R"("END")"), base + R"(,"stop_sequences":["END"]})"));
    EXPECT_TRUE(translates_to(request(R"(["a","b"])"), base + R"(,"stop_sequences":["a","b"]})"));
    EXPECT_TRUE(translates_to(request("null"), base + "}"));
    EXPECT_TRUE(translates_to(request(R"("")"), base + "}"));
    EXPECT_TRUE(translates_to(request("[]"), base + "}"));
    EXPECT_TRUE(fails_with(request("[1]"), "stop"));
    EXPECT_TRUE(fails_with(request("true"), "stop"));
}

TEST(AnthropicRequest, SamplingUserAndStream) {
    EXPECT_TRUE(translates_to(
        with_messages(R"([{"role":"user","content":"Hi"}])",
                      R"("temperature":1,"top_p":0.25,"top_k":40,"user":"u1","stream":false,)"),
        R"({"model":"claude-opus-4-6","max_tokens":4096,"messages":[{"role":"user","content":"Hi"}],
            "temperature":1,"top_p":0.25,"top_k":40,"metadata":{"user_id":"u1"},"stream":false})"));
    const auto request = [](const std::string& more) {
        return with_messages(R"([{"role":"user","content":"Hi"}])", more);
    };
    EXPECT_TRUE(fails_with(request(R"("temperature":"hot",)"), "temperature"));
    EXPECT_TRUE(fails_with(request(R"("top_p":[1],)"), "top_p"));
    EXPECT_TRUE(fails_with(request(R"("top_k":-1,)"), "top_k"));
    EXPECT_TRUE(fails_with(request(R"("user":5,)"), "user"));
    EXPECT_TRUE(fails_with(request(R"("stream":"yes",)"), "stream"));
}

TEST(AnthropicRequest, NGreaterThanOneIsAnError) {
    const std::string messages = R"([{"role":"user","content":"Hi"}])";
    EXPECT_TRUE(fails_with(with_messages(messages, R"("n":2,)"), "n: "));
    EXPECT_TRUE(fails_with(with_messages(messages, R"("n":0,)"), "n: "));
    EXPECT_TRUE(fails_with(with_messages(messages, R"("n":"1",)"), "n: "));
    EXPECT_TRUE(translate(with_messages(messages, R"("n":1,)")).error.empty());
    EXPECT_TRUE(translate(with_messages(messages, R"("n":null,)")).error.empty());
}

TEST(AnthropicRequest, FastModeExtraBodyIsMergedLast) {
    const std::string request =
        with_messages(R"([{"role":"user","content":"Hi"}])", R"("user":"u1","max_tokens":10,)");
    EXPECT_TRUE(translates_to(request, R"({"model":"claude-opus-4-6","max_tokens":10,
        "messages":[{"role":"user","content":"Hi"}],"metadata":{"user_id":"u1"},"speed":"fast"})",
                              R"({"speed":"fast"})"));
    // Objects merge member by member; other values replace the translated ones.
    EXPECT_TRUE(translates_to(request, R"({"model":"claude-opus-4-6","max_tokens":64,
        "messages":[{"role":"user","content":"Hi"}],
        "metadata":{"user_id":"u1","tier":"gold"},"speed":"fast"})",
                              R"({"speed":"fast","max_tokens":64,"metadata":{"tier":"gold"}})"));
    EXPECT_TRUE(translates_to(request, R"({"model":"claude-opus-4-6","max_tokens":10,
        "messages":[{"role":"user","content":"Hi"}],"metadata":{"user_id":"u1"}})",
                              " \n"));
    const rapidjson::Document parsed = golden::parse(request);
    EXPECT_FALSE(translate_request(parsed, kModel, 1, "[1]").error.empty());
    EXPECT_FALSE(translate_request(parsed, kModel, 1, "{bad").error.empty());
}

TEST(AnthropicRequest, MalformedRequestsAreErrors) {
    EXPECT_TRUE(fails_with("[1,2]", "JSON object"));
    EXPECT_TRUE(fails_with(R"({"model":"smart"})", "messages"));
    EXPECT_TRUE(fails_with(R"({"messages":{}})", "messages: must be an array"));
    EXPECT_TRUE(fails_with(R"({"messages":[]})", "messages"));
    EXPECT_TRUE(fails_with(with_messages(R"(["hi"])"), "messages[0]: must be an object"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"content":"hi"}])"), "messages[0].role"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"function","name":"f","content":"1"}])"),
                           "unsupported role 'function'"));
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"robot","content":"hi"}])"), "robot"));
}

TEST(AnthropicRequest, DeepNestingIsAnErrorNotACrash) {
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    // Nested arguments text: parsed by the translator.
    std::string escaped_deep_object = "{\\\"a\\\":" + deep + "}";
    EXPECT_TRUE(fails_with(with_messages(R"([{"role":"assistant","tool_calls":[{"id":"t",
        "type":"function","function":{"name":"f","arguments":")" +
                                         escaped_deep_object + R"("}}]}])"),
                           "nested too deeply"));
    // A nested request document: parsed by the caller.
    rapidjson::Document request;
    const std::string body = with_messages(
        R"([{"role":"user","content":)" + std::string(20000, '[') + std::string(20000, ']') + "}]");
    request.Parse<rapidjson::kParseIterativeFlag>(body.c_str(), body.size());
    ASSERT_FALSE(request.HasParseError());
    EXPECT_FALSE(translate_request(request, kModel, 1, {}).error.empty());
    const rapidjson::Document parsed =
        golden::parse(R"({"messages":[{"role":"user","content":"x"}]})");
    EXPECT_FALSE(translate_request(parsed, kModel, 1, "{\"a\":" + deep + "}").error.empty());
}

TEST(AnthropicRequest, StreamIncludeUsage) {
    EXPECT_TRUE(
        stream_include_usage(golden::parse(R"({"stream_options":{"include_usage":true}})")));
    EXPECT_FALSE(
        stream_include_usage(golden::parse(R"({"stream_options":{"include_usage":false}})")));
    EXPECT_FALSE(stream_include_usage(golden::parse(R"({"stream_options":{"include_usage":1}})")));
    EXPECT_FALSE(stream_include_usage(golden::parse(R"({"stream_options":null})")));
    EXPECT_FALSE(stream_include_usage(golden::parse(R"({})")));
    EXPECT_FALSE(stream_include_usage(golden::parse(R"([])")));
}

}  // namespace
}  // namespace turnout::protocol::anthropic
