#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/anthropic.hpp"
#include "protocol/sse.hpp"
#include "tests/unit/protocol/golden/golden.hpp"

namespace turnout::protocol::anthropic {
namespace {

/// Splits an Anthropic SSE body into events as the proxy does, whatever the line endings.
std::vector<std::string> split_events(const std::string& body) {
    SseSplitter splitter;
    splitter.feed(body);
    std::vector<std::string> events;
    while (auto event = splitter.next_event()) events.push_back(std::move(*event));
    return events;
}

/// One Anthropic event with `data_json` as its data, one `data:` line per line of it (SSE
/// joins them with newlines, which JSON takes as whitespace).
std::string event(const std::string& type, const std::string& data_json) {
    std::string text = "event: " + type + "\n";
    std::istringstream lines(data_json);
    for (std::string line; std::getline(lines, line);) text += "data: " + line + "\n";
    return text + "\n";
}

std::string message_start(
    const std::string& usage_json = R"({"input_tokens":5,"output_tokens":1})") {
    return event("message_start", R"({"type":"message_start","message":{"id":"msg_1",
        "type":"message","role":"assistant","model":"claude-opus-4-6","content":[],
        "stop_reason":null,"stop_sequence":null,"usage":)" +
                                      usage_json + "}}");
}

std::string text_start(int index) {
    return event("content_block_start", R"({"type":"content_block_start","index":)" +
                                            std::to_string(index) +
                                            R"(,"content_block":{"type":"text","text":""}})");
}

std::string text_delta(int index, const std::string& text_json) {
    return event("content_block_delta",
                 R"({"type":"content_block_delta","index":)" + std::to_string(index) +
                     R"(,"delta":{"type":"text_delta","text":)" + text_json + "}}");
}

std::string tool_start(int index, const std::string& id, const std::string& name) {
    return event("content_block_start", R"({"type":"content_block_start","index":)" +
                                            std::to_string(index) +
                                            R"(,"content_block":{"type":"tool_use","id":")" + id +
                                            R"(","name":")" + name + R"(","input":{}}})");
}

std::string json_delta(int index, const std::string& partial_json) {
    rapidjson::Document quoted;
    quoted.SetString(partial_json.c_str(), static_cast<rapidjson::SizeType>(partial_json.size()),
                     quoted.GetAllocator());
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    quoted.Accept(writer);
    return event("content_block_delta",
                 R"({"type":"content_block_delta","index":)" + std::to_string(index) +
                     R"(,"delta":{"type":"input_json_delta","partial_json":)" + buffer.GetString() +
                     "}}");
}

std::string block_stop(int index) {
    return event("content_block_stop",
                 R"({"type":"content_block_stop","index":)" + std::to_string(index) + "}");
}

std::string message_delta(const std::string& stop_reason,
                          const std::string& usage_json = R"({"output_tokens":12})") {
    return event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":")" +
                                      stop_reason + R"(","stop_sequence":null},"usage":)" +
                                      usage_json + "}");
}

const std::string kMessageStop = event("message_stop", R"({"type":"message_stop"})");
const std::string kPing = event("ping", R"({"type": "ping"})");

/// Feeds every event and returns the concatenated output.
std::string feed(StreamTranslator& translator, const std::vector<std::string>& events) {
    std::string out;
    for (const auto& e : events) out += translator.on_event(e);
    return out;
}

/// The parsed frames of `text` (without [DONE]); every chunk checked for the common fields.
std::vector<rapidjson::Document> chunks(const std::string& text) {
    std::vector<rapidjson::Document> out;
    for (const auto& frame : golden::frames(text)) {
        if (frame == "[DONE]") continue;
        out.push_back(golden::parse(frame));
        EXPECT_TRUE(out.back().IsObject()) << frame;
    }
    return out;
}

/// Reassembles each tool call's arguments by OpenAI index, as clients do.
std::map<std::uint64_t, std::string> tool_arguments(const std::vector<rapidjson::Document>& all) {
    std::map<std::uint64_t, std::string> arguments;
    for (const auto& chunk : all) {
        if (!chunk.HasMember("choices") || chunk["choices"].Empty()) continue;
        const auto& delta = chunk["choices"][0]["delta"];
        if (!delta.HasMember("tool_calls")) continue;
        for (const auto& call : delta["tool_calls"].GetArray()) {
            arguments[call["index"].GetUint64()] += call["function"]["arguments"].GetString();
        }
    }
    return arguments;
}

TEST(AnthropicStream, GoldenTextAndSeveralToolCalls) {
    // Text, then three tool calls (arguments split over many deltas, one without parameters),
    // with ping, an unknown event, a comment and a thinking delta in between; include_usage.
    StreamTranslator translator("req-1", "smart", true);
    const std::vector<std::string> expected =
        golden::lines(golden::read("stream_text_and_tools.openai.jsonl"));
    const std::string out =
        feed(translator, split_events(golden::read("stream_text_and_tools.anthropic.sse")));
    const std::vector<std::string> frames = golden::frames(out);
    ASSERT_EQ(frames.size(), expected.size()) << out;
    std::int64_t created = 0;
    for (std::size_t i = 0; i + 1 < frames.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_TRUE(golden::json_equal(frames[i], expected[i], true));
        // Every chunk of one stream shares one `created`.
        const std::int64_t this_created = golden::parse(frames[i])["created"].GetInt64();
        if (i == 0) created = this_created;
        EXPECT_EQ(this_created, created);
    }
    EXPECT_EQ(expected.back(), "[DONE]");
    EXPECT_TRUE(out.size() >= 14 && out.substr(out.size() - 14) == "data: [DONE]\n\n");

    EXPECT_TRUE(translator.finished());
    EXPECT_FALSE(translator.failed());
    EXPECT_EQ(translator.finish_reason(), "tool_calls");
    EXPECT_EQ(translator.assembled_text(), "Checking both \xC3\xA9t\xC3\xA9 cities.");
    EXPECT_EQ(translator.usage().input_tokens, 472u);
    EXPECT_EQ(translator.usage().cache_read_input_tokens, 1024u);
    EXPECT_EQ(translator.usage().output_tokens, 89u);
    EXPECT_FALSE(translator.speed().has_value());

    const auto arguments = tool_arguments(chunks(out));
    ASSERT_EQ(arguments.size(), 3u);
    EXPECT_TRUE(golden::json_equal(arguments.at(0), R"({"city":"Paris","unit":"celsius"})"));
    EXPECT_TRUE(golden::json_equal(arguments.at(1), R"({"city":"Rome"})"));
    EXPECT_EQ(arguments.at(2), "{}");
}

TEST(AnthropicStream, ArgumentsOneCharacterPerDelta) {
    const std::string input = R"({"query":"caf\u00e9 \"x\"","limit":3,"tags":["a","b"]})";
    std::vector<std::string> events = {message_start(), tool_start(0, "toolu_1", "search")};
    for (const char c : input) events.push_back(json_delta(0, std::string(1, c)));
    events.push_back(block_stop(0));
    events.push_back(message_delta("tool_use"));
    events.push_back(kMessageStop);
    StreamTranslator translator("req-1", "smart", false);
    const auto all = chunks(feed(translator, events));
    ASSERT_EQ(all.size(), 2 + input.size() + 1);  // role, tool start, one per char, finish
    const auto arguments = tool_arguments(all);
    ASSERT_EQ(arguments.size(), 1u);
    EXPECT_EQ(arguments.at(0), input);
    EXPECT_EQ(translator.finish_reason(), "tool_calls");
}

TEST(AnthropicStream, ToolIndexCountsToolCallsNotBlocks) {
    StreamTranslator translator("req-1", "smart", false);
    const auto all = chunks(feed(
        translator,
        {message_start(), text_start(0), text_delta(0, R"("a")"), block_stop(0),
         tool_start(1, "t1", "f"), json_delta(1, "{}"), block_stop(1), text_start(2),
         text_delta(2, R"("b")"), block_stop(2), tool_start(3, "t2", "g"),
         json_delta(3, R"({"x":1})"), block_stop(3), message_delta("tool_use"), kMessageStop}));
    std::vector<std::uint64_t> starts;
    for (const auto& chunk : all) {
        const auto& delta = chunk["choices"][0]["delta"];
        if (delta.HasMember("tool_calls") && delta["tool_calls"][0].HasMember("id")) {
            starts.push_back(delta["tool_calls"][0]["index"].GetUint64());
        }
    }
    EXPECT_EQ(starts, (std::vector<std::uint64_t>{0, 1}));
    EXPECT_EQ(tool_arguments(all),
              (std::map<std::uint64_t, std::string>{{0, "{}"}, {1, R"({"x":1})"}}));
    EXPECT_EQ(translator.assembled_text(), "ab");
}

TEST(AnthropicStream, TextStreamWithoutUsageHasExactFrames) {
    StreamTranslator translator("req-1", "smart", false);
    const std::string out =
        feed(translator, {message_start(), kPing, text_start(0), text_delta(0, R"("Hi")"),
                          block_stop(0), message_delta("end_turn"), kMessageStop});
    const std::string created =
        std::to_string(golden::parse(golden::frames(out)[0])["created"].GetInt64());
    const std::string head =
        R"({"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":)" + created +
        R"(,"model":"smart","choices":[{"index":0,"delta":)";
    EXPECT_EQ(out,
              "data: " + head + R"({"role":"assistant","content":""},"finish_reason":null}]})" +
                  "\n\ndata: " + head + R"({"content":"Hi"},"finish_reason":null}]})" +
                  "\n\ndata: " + head + R"({},"finish_reason":"stop"}]})" + "\n\ndata: [DONE]\n\n");
    EXPECT_EQ(translator.usage().input_tokens, 5u);
    EXPECT_EQ(translator.usage().output_tokens, 12u);
}

TEST(AnthropicStream, ToolStreamWithUsageHasExactFrames) {
    // Byte for byte, member order included: a tool call's first chunk names it, later chunks
    // carry only arguments, a tool without input gets "{}" at its block's end.
    StreamTranslator translator("req-1", "smart", true);
    const std::string out = feed(
        translator, {message_start(), tool_start(0, "toolu_1", "now"), json_delta(0, R"({"tz":)"),
                     json_delta(0, R"("UTC"})"), block_stop(0), tool_start(1, "toolu_2", "ping"),
                     block_stop(1), message_delta("tool_use"), kMessageStop});
    const std::string created =
        std::to_string(golden::parse(golden::frames(out)[0])["created"].GetInt64());
    const std::string chunk =
        R"({"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":)" + created +
        R"(,"model":"smart","choices":)";
    const auto choice = [&](const std::string& delta, const std::string& finish_reason) {
        return chunk + R"([{"index":0,"delta":)" + delta + R"(,"finish_reason":)" + finish_reason +
               "}]}";
    };
    const std::vector<std::string> expected = {
        choice(R"({"role":"assistant","content":""})", "null"),
        choice(R"({"tool_calls":[{"index":0,"id":"toolu_1","type":"function",)"
               R"("function":{"name":"now","arguments":""}}]})",
               "null"),
        choice(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"tz\":"}}]})", "null"),
        choice(R"({"tool_calls":[{"index":0,"function":{"arguments":"\"UTC\"}"}}]})", "null"),
        choice(R"({"tool_calls":[{"index":1,"id":"toolu_2","type":"function",)"
               R"("function":{"name":"ping","arguments":""}}]})",
               "null"),
        choice(R"({"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]})", "null"),
        choice("{}", R"("tool_calls")"),
        chunk + R"([],"usage":{"prompt_tokens":5,"completion_tokens":12,"total_tokens":17,)"
                R"("prompt_tokens_details":{"cached_tokens":0}}})",
        "[DONE]",
    };
    std::string joined;
    for (const std::string& frame : expected) joined += "data: " + frame + "\n\n";
    EXPECT_EQ(out, joined);
}

TEST(AnthropicStream, EachStopReason) {
    const std::pair<std::string, std::string> cases[] = {
        {"end_turn", "stop"},       {"stop_sequence", "stop"},     {"max_tokens", "length"},
        {"tool_use", "tool_calls"}, {"refusal", "content_filter"}, {"pause_turn", "stop"},
    };
    for (const auto& [stop_reason, finish_reason] : cases) {
        SCOPED_TRACE(stop_reason);
        StreamTranslator translator("req-1", "smart", false);
        const auto all = chunks(feed(translator, {message_start(), message_delta(stop_reason)}));
        ASSERT_EQ(all.size(), 2u);
        EXPECT_STREQ(all[1]["choices"][0]["finish_reason"].GetString(), finish_reason.c_str());
        EXPECT_TRUE(all[1]["choices"][0]["delta"].ObjectEmpty());
        EXPECT_EQ(translator.finish_reason(), finish_reason);
        EXPECT_FALSE(translator.finished());
    }
}

TEST(AnthropicStream, IncludeUsageWithCacheTokensAndFastMode) {
    StreamTranslator translator("req-1", "smart", true);
    const std::string out =
        feed(translator,
             {message_start(R"({"input_tokens":10,"cache_creation_input_tokens":20,
                           "cache_read_input_tokens":300,"output_tokens":1})"),
              text_start(0), text_delta(0, R"("fast")"), block_stop(0),
              message_delta("end_turn", R"({"output_tokens":40,"speed":"fast"})"), kMessageStop});
    const std::vector<std::string> frames = golden::frames(out);
    ASSERT_EQ(frames.size(), 5u);
    EXPECT_TRUE(golden::json_equal(frames[3], R"({"id":"chatcmpl-msg_1",
        "object":"chat.completion.chunk","model":"smart","choices":[],
        "usage":{"prompt_tokens":330,"completion_tokens":40,"total_tokens":370,
                 "prompt_tokens_details":{"cached_tokens":300}}})",
                                   true));
    EXPECT_EQ(frames[4], "[DONE]");
    EXPECT_EQ(translator.speed(), "fast");
    EXPECT_EQ(translator.usage().cache_creation_input_tokens, 20u);
}

TEST(AnthropicStream, ErrorEventEndsTheStreamWithOneErrorFrame) {
    StreamTranslator translator("req-1", "smart", true);
    const std::string before =
        feed(translator, {message_start(), text_start(0), text_delta(0, R"("par")")});
    EXPECT_EQ(chunks(before).size(), 2u);
    const std::string out = translator.on_event(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded\"}}\n\n");
    EXPECT_EQ(out,
              "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\","
              "\"code\":\"overloaded_error\"}}\n\n");
    EXPECT_TRUE(translator.failed());
    EXPECT_FALSE(translator.finished());
    EXPECT_EQ(translator.assembled_text(), "par");
    // Whatever follows is ignored: no [DONE] after an error.
    EXPECT_EQ(feed(translator, {text_delta(0, R"("tial")"), kMessageStop}), "");
}

TEST(AnthropicStream, ErrorEventWithoutDetails) {
    StreamTranslator translator("req-1", "smart", false);
    const std::string out = translator.on_event("event: error\ndata: {\"type\":\"error\"}\n\n");
    EXPECT_TRUE(golden::json_equal(golden::frames(out).at(0), R"({"error":{
        "message":"the upstream stream failed",
        "type":"upstream_error","code":"upstream_stream_failed"}})"));
    EXPECT_TRUE(translator.failed());
}

TEST(AnthropicStream, MalformedDataIsAnErrorFrame) {
    const std::vector<std::string> bad_events = {
        "data: {\"type\":\"content_block_delta\",\n\n",
        "data: [1]\n\n",
        "data: \"ping\"\n\n",
        "data: [DONE]\n\n",
    };
    for (const std::string& bad : bad_events) {
        SCOPED_TRACE(bad);
        StreamTranslator translator("req-1", "smart", false);
        feed(translator, {message_start()});
        const std::string out = translator.on_event(bad);
        EXPECT_TRUE(translator.failed());
        ASSERT_EQ(golden::frames(out).size(), 1u);
        EXPECT_TRUE(golden::json_equal(golden::frames(out)[0], R"({"error":{
            "message":"the upstream sent a malformed stream event",
            "type":"upstream_error","code":"upstream_stream_failed"}})"));
        EXPECT_EQ(out.find("[DONE]"), std::string::npos);
    }
}

TEST(AnthropicStream, PingUnknownCommentsAndEmptyEventsProduceNothing) {
    StreamTranslator translator("req-1", "smart", false);
    feed(translator, {message_start()});
    const std::vector<std::string> quiet_events = {
        kPing,
        event("future", R"({"type":"future","x":[1,2]})"),
        ": comment\n\n",
        "event: ping\n\n",
        "\n",
        "",
        event("content_block_delta", R"({"type":"content_block_delta","index":0,
                                         "delta":{"type":"thinking_delta","thinking":"hm"}})"),
        event("content_block_delta", R"({"type":"content_block_delta","index":0,
                                         "delta":{"type":"signature_delta","signature":"s"}})"),
        json_delta(7, "{\"orphan\":1}"),
        block_stop(0),
        text_delta(0, R"("")"),
        event("content_block_start", R"({"type":"content_block_start","index":0,
                                         "content_block":{"type":"thinking","thinking":""}})"),
    };
    for (const std::string& quiet : quiet_events) {
        SCOPED_TRACE(quiet);
        EXPECT_EQ(translator.on_event(quiet), "");
    }
    EXPECT_FALSE(translator.failed());
}

TEST(AnthropicStream, CrLfEventsAndIdBeforeMessageStart) {
    StreamTranslator translator("req-7", "smart", false);
    // A delta before message_start still gets the role chunk first, named after the request.
    const std::string out = translator.on_event(
        "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\r\n\r\n");
    const auto all = chunks(out);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_STREQ(all[0]["id"].GetString(), "chatcmpl-req-7");
    EXPECT_STREQ(all[1]["choices"][0]["delta"]["content"].GetString(), "x");
    // A late message_start does not rename a stream already under way, nor repeat the role.
    EXPECT_EQ(translator.on_event(message_start()), "");
    EXPECT_STREQ(chunks(translator.on_event(text_delta(0, R"("y")")))[0]["id"].GetString(),
                 "chatcmpl-req-7");
}

TEST(AnthropicStream, MessageStopWithoutMessageDeltaStillFinishes) {
    StreamTranslator translator("req-1", "smart", true);
    const std::string out = feed(translator, {message_start(), kMessageStop});
    const std::vector<std::string> frames = golden::frames(out);
    ASSERT_EQ(frames.size(), 4u);  // role, finish, usage, [DONE]
    EXPECT_STREQ(golden::parse(frames[1])["choices"][0]["finish_reason"].GetString(), "stop");
    EXPECT_EQ(frames[3], "[DONE]");
    EXPECT_TRUE(translator.finished());
    EXPECT_EQ(translator.on_event(text_delta(0, R"("late")")), "");
}

TEST(AnthropicStream, ToolBlockWithWholeInputAtStart) {
    StreamTranslator translator("req-1", "smart", false);
    const auto all = chunks(
        feed(translator,
             {message_start(),
              event("content_block_start",
                    R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use",
                   "id":"t","name":"f","input":{"a":1}}})"),
              block_stop(0)}));
    EXPECT_EQ(tool_arguments(all), (std::map<std::uint64_t, std::string>{{0, R"({"a":1})"}}));
}

TEST(AnthropicStream, TruncatedAndMistypedEventsNeverCrash) {
    const std::vector<std::string> events =
        split_events(golden::read("stream_text_and_tools.anthropic.sse"));
    ASSERT_FALSE(events.empty());
    for (const auto& e : events) {
        for (std::size_t size = 0; size <= e.size(); ++size) {
            StreamTranslator translator("req-1", "smart", true);
            const std::string out = translator.on_event(std::string_view(e).substr(0, size));
            if (translator.failed()) {
                EXPECT_EQ(golden::frames(out).size(), 1u);
            }
        }
    }
    // Wrong types in every field the translator reads.
    const std::vector<std::string> odd_events = {
        R"({"type":7})",
        R"({"type":"message_start","message":[]})",
        R"({"type":"message_start","message":{"id":5,"usage":{"input_tokens":"x"}}})",
        R"({"type":"content_block_start","index":"0","content_block":{"type":"tool_use"}})",
        R"({"type":"content_block_start","content_block":null})",
        R"({"type":"content_block_delta","index":-1,
            "delta":{"type":"input_json_delta","partial_json":5}})",
        R"({"type":"content_block_delta","delta":"x"})",
        R"({"type":"content_block_stop","index":null})",
        R"({"type":"message_delta","delta":{"stop_reason":7},"usage":[]})",
        R"({"type":"error","error":"x"})",
    };
    StreamTranslator translator("req-1", "smart", true);
    for (const std::string& odd : odd_events) {
        SCOPED_TRACE(odd);
        const std::string out = translator.on_event(event("odd", odd));
        for (const auto& frame : golden::frames(out)) {
            EXPECT_FALSE(golden::parse(frame).HasParseError()) << frame;
        }
    }
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    StreamTranslator deep_translator("req-1", "smart", false);
    deep_translator.on_event("data: {\"type\":\"ping\",\"x\":" + deep + "}\n\n");
    EXPECT_TRUE(deep_translator.failed());
}

}  // namespace
}  // namespace turnout::protocol::anthropic
