// Non-streaming proxying through the real gateway to the simulator: answers, routing, model
// rewriting, connection reuse, pipelining, /v1/models, the other OpenAI endpoints.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

constexpr const char* kText = "The quick brown fox jumps over the lazy dog.";

class ProxyTest : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(stack_.start()); }

    GatewayStack stack_{{"--text", kText}};
};

TEST_F(ProxyTest, NonStreamingChatReturnsTheUpstreamAnswer) {
    auto direct = stack_.sim().request("POST", "/v1/chat/completions", {}, chat_body("sim-large"));
    ASSERT_TRUE(direct);
    ASSERT_EQ(direct->status, 200) << direct->body;
    auto direct_doc = parse_json(direct->body);
    auto expected = json_string(direct_doc, "choices/0/message/content");
    ASSERT_TRUE(expected) << direct->body;

    auto response = stack_.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    auto doc = parse_json(response->body);
    ASSERT_FALSE(doc.HasParseError()) << response->body;
    EXPECT_EQ(json_string(doc, "choices/0/message/content"), expected) << response->body;
    EXPECT_EQ(json_string(doc, "object"), "chat.completion");
    EXPECT_NE(response->header("content-type").find("application/json"), std::string::npos);

    EXPECT_FALSE(response->header("x-request-id").empty());
    EXPECT_EQ(response->header("x-turnout-route"), "smart");
    EXPECT_EQ(response->header("x-turnout-target"), "sim/sim-large");
}

TEST_F(ProxyTest, UpstreamReceivesTheTargetModelAndPath) {
    auto response = stack_.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;

    auto recorded = stack_.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->method, "POST");
    EXPECT_EQ(recorded->target, "/v1/chat/completions");
    auto body = parse_json(recorded->body);
    ASSERT_FALSE(body.HasParseError()) << recorded->body;
    EXPECT_EQ(json_string(body, "model"), "sim-large") << recorded->body;
    // The rest of the request is passed on as sent.
    EXPECT_EQ(json_string(body, "messages/0/content"), "Say hello.") << recorded->body;
}

TEST_F(ProxyTest, MatchModelSelectsTheRoute) {
    auto response = stack_.gateway().chat(chat_body("gpt-smart"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->header("x-turnout-route"), "smart");
    EXPECT_EQ(response->header("x-turnout-target"), "sim/sim-large");

    auto glob = stack_.gateway().chat(chat_body("fast-anything"));
    ASSERT_TRUE(glob);
    EXPECT_EQ(glob->status, 200) << glob->body;
    EXPECT_EQ(glob->header("x-turnout-route"), "fast");
    EXPECT_EQ(glob->header("x-turnout-target"), "sim/sim-small");
    auto recorded = stack_.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(json_string(parse_json(recorded->body), "model"), "sim-small");
}

TEST_F(ProxyTest, RequestIdsAreGeneratedAndDistinct) {
    auto a = stack_.gateway().chat(chat_body("smart"));
    auto b = stack_.gateway().chat(chat_body("smart"));
    ASSERT_TRUE(a && b);
    EXPECT_FALSE(a->header("x-request-id").empty());
    EXPECT_NE(a->header("x-request-id"), b->header("x-request-id"));
}

TEST_F(ProxyTest, KeepAliveReusesUpstreamConnections) {
    auto before = stack_.sim().stat("connections_accepted");
    auto requests_before = stack_.sim().stat("requests");
    ASSERT_TRUE(before && requests_before);

    RawConnection client(stack_.api_port());
    ASSERT_TRUE(client.connected()) << client.error();
    for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                        {{"Content-Type", "application/json"}}, chat_body("smart")))
            << "request " << i << ": " << client.error();
        auto response = client.read_response(kWait);
        ASSERT_TRUE(response) << "request " << i << ": " << client.error();
        ASSERT_EQ(response->status, 200) << "request " << i << ": " << response->body;
        ASSERT_NE(to_lower(response->header("connection")), "close") << "request " << i;
    }

    auto after = stack_.sim().stat("connections_accepted");
    auto requests_after = stack_.sim().stat("requests");
    ASSERT_TRUE(after && requests_after);
    EXPECT_LE(*after - *before, 5) << "the gateway opened a new upstream connection per request";
    // /_sim/* control calls are not counted as requests.
    EXPECT_EQ(*requests_after - *requests_before, 50);
}

TEST_F(ProxyTest, KeepAliveAcrossSeveralClientConnections) {
    auto before = stack_.sim().stat("connections_accepted");
    ASSERT_TRUE(before);
    for (int c = 0; c < 5; ++c) {
        RawConnection client(stack_.api_port());
        ASSERT_TRUE(client.connected()) << client.error();
        for (int i = 0; i < 10; ++i) {
            ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                            {{"Content-Type", "application/json"}},
                                            chat_body("smart")));
            auto response = client.read_response(kWait);
            ASSERT_TRUE(response) << client.error();
            ASSERT_EQ(response->status, 200) << response->body;
        }
    }
    auto after = stack_.sim().stat("connections_accepted");
    ASSERT_TRUE(after);
    EXPECT_LE(*after - *before, 5);
}

TEST_F(ProxyTest, PipelinedRequestsAreAnsweredInOrder) {
    auto one_request = [](const std::string& id, const std::string& model) {
        std::string body = chat_body(model);
        return "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: "
               "application/json\r\nx-request-id: " +
               id + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    };
    RawConnection client(stack_.api_port());
    ASSERT_TRUE(client.connected()) << client.error();
    ASSERT_TRUE(client.send(one_request("pipe-1", "smart") + one_request("pipe-2", "fast-x")));

    auto first = client.read_response(kWait);
    ASSERT_TRUE(first) << client.error();
    auto second = client.read_response(kWait);
    ASSERT_TRUE(second) << client.error();
    EXPECT_EQ(first->status, 200) << first->body;
    EXPECT_EQ(second->status, 200) << second->body;
    EXPECT_EQ(first->header("x-request-id"), "pipe-1");
    EXPECT_EQ(first->header("x-turnout-route"), "smart");
    EXPECT_EQ(second->header("x-request-id"), "pipe-2");
    EXPECT_EQ(second->header("x-turnout-route"), "fast");
}

TEST_F(ProxyTest, ModelsListsRouteNamesAndExactMatchModels) {
    auto response = stack_.gateway().request("GET", "/v1/models");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    auto doc = parse_json(response->body);
    ASSERT_FALSE(doc.HasParseError()) << response->body;
    EXPECT_EQ(json_string(doc, "object"), "list") << response->body;
    const auto* data = json_at(doc, "data");
    ASSERT_TRUE(data && data->IsArray()) << response->body;
    std::set<std::string> ids;
    for (const auto& model : data->GetArray()) {
        auto id = json_string(model, "id");
        ASSERT_TRUE(id) << response->body;
        ids.insert(*id);
    }
    EXPECT_TRUE(ids.count("smart")) << response->body;
    EXPECT_TRUE(ids.count("gpt-smart")) << response->body;
    EXPECT_TRUE(ids.count("fast")) << response->body;
    EXPECT_FALSE(ids.count("fast-*")) << "globs are not model names: " << response->body;
    // The gateway answers this itself.
    EXPECT_EQ(stack_.sim().stat("requests"), 0);
}

TEST_F(ProxyTest, CompletionsArePassedThrough) {
    auto response =
        stack_.gateway().request("POST", "/v1/completions", {{"Content-Type", "application/json"}},
                                 R"({"model":"smart","prompt":"Once upon a time","max_tokens":8})");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->header("x-turnout-target"), "sim/sim-large");
    auto recorded = stack_.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->target, "/v1/completions");
    EXPECT_EQ(json_string(parse_json(recorded->body), "model"), "sim-large");
    EXPECT_EQ(json_string(parse_json(recorded->body), "prompt"), "Once upon a time");
}

TEST_F(ProxyTest, EmbeddingsArePassedThrough) {
    auto response =
        stack_.gateway().request("POST", "/v1/embeddings", {{"Content-Type", "application/json"}},
                                 R"({"model":"smart","input":"hello"})");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    auto doc = parse_json(response->body);
    const auto* embedding = json_at(doc, "data/0/embedding");
    EXPECT_TRUE(embedding && embedding->IsArray() && embedding->Size() > 0) << response->body;
    auto recorded = stack_.sim().last_request();
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->target, "/v1/embeddings");
    EXPECT_EQ(json_string(parse_json(recorded->body), "model"), "sim-large");
}

TEST_F(ProxyTest, AccessLogLineForEachRequest) {
    auto response = stack_.gateway().chat(chat_body("smart"), {{"x-request-id", "access-log-1"}});
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200);
    std::string line;
    ASSERT_TRUE(
        stack_.gateway().wait_for_log(std::regex(R"("request_id":"access-log-1")"), kWait, &line));
    auto doc = parse_json(line);
    ASSERT_FALSE(doc.HasParseError()) << line;
    EXPECT_EQ(json_string(doc, "logger"), "access") << line;
    EXPECT_EQ(json_string(doc, "method"), "POST") << line;
    EXPECT_EQ(json_string(doc, "path"), "/v1/chat/completions") << line;
    EXPECT_EQ(json_string(doc, "route"), "smart") << line;
    EXPECT_EQ(json_string(doc, "target"), "sim/sim-large") << line;
    const auto* status = json_at(doc, "status");
    ASSERT_TRUE(status && status->IsInt()) << line;
    EXPECT_EQ(status->GetInt(), 200);
}

TEST_F(ProxyTest, EveryLogLineIsJson) {
    ASSERT_TRUE(stack_.gateway().chat(chat_body("smart")));
    ASSERT_TRUE(stack_.gateway().chat(chat_body("no-such-model")));
    ASSERT_TRUE(stack_.gateway().wait_for_log(std::regex(R"("status":404)")));
    for (const auto& line : stack_.gateway().log_lines()) {
        auto doc = parse_json(line);
        EXPECT_TRUE(!doc.HasParseError() && doc.IsObject()) << "not a JSON object: " << line;
    }
}

}  // namespace
}  // namespace turnout::test
