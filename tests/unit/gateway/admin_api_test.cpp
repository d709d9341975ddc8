// The admin API without a socket: answer_admin() driven on an io_context, with a real shadow
// runtime (its own thread and a temporary state directory) behind /admin/routes.

#include "gateway/admin_api.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "base/logging.hpp"
#include "config/loader.hpp"
#include "shadow/runtime.hpp"
#include "upstream/providers.hpp"

namespace turnout::gateway {
namespace {

namespace asio = boost::asio;

constexpr const char* kConfig = R"(
providers:
  slow: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
  fast: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
routes:
  - name: chat
    match: {model: chat}
    primary: {provider: slow, model: slow-model}
    candidate: {provider: fast, model: fast-model}
    judge: {provider: slow, model: judge-model}
    promotion: {mode: auto}
)";

class AdminApiTest : public ::testing::Test {
  protected:
    void SetUp() override {
        base::init_logging({.level = "error", .format = "text"});  // the runtime logs events
        state_ = std::filesystem::temp_directory_path() /
                 ("turnout-admin-api-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(state_);
        auto loaded = config::load_config_string(kConfig, "admin.yaml", config::EnvPolicy::warn);
        ASSERT_TRUE(loaded.errors.empty()) << loaded.errors.front().text;
        shadow_.emplace(state_.string(), nullptr);
        shadow_->configure(upstream::Providers::build(loaded.config));
        shadow_->start();
        context_.draining = &draining_;
        context_.shadow = &*shadow_;
        context_.reload = [this]() -> asio::awaitable<ReloadOutcome> {
            ++reloads_;
            co_return ReloadOutcome{false, {"admin.yaml:3:5: a problem"}};
        };
    }
    void TearDown() override {
        shadow_.reset();
        std::filesystem::remove_all(state_);
    }

    AdminAnswer ask(std::string method, std::string target, std::string body = {},
                    std::string authorization = {}) {
        AdminRequest request;
        request.get = method == "GET";
        request.post = method == "POST";
        request.target = target;
        request.path = std::string_view(target).substr(0, target.find('?'));
        request.body = body;
        request.authorization = authorization;
        asio::io_context io;
        auto answer = asio::co_spawn(io, answer_admin(context_, request), asio::use_future);
        io.run();
        return answer.get();
    }

    std::filesystem::path state_;
    std::atomic<bool> draining_{false};
    std::optional<shadow::ShadowRuntime> shadow_;
    AdminContext context_;
    int reloads_ = 0;
};

TEST_F(AdminApiTest, HealthAndReadiness) {
    EXPECT_EQ(ask("GET", "/healthz").status, 200u);
    EXPECT_EQ(ask("GET", "/readyz").status, 200u);
    draining_ = true;
    const auto answer = ask("GET", "/readyz");
    EXPECT_EQ(answer.status, 503u);
    EXPECT_EQ(answer.body, R"({"status":"draining"})");
}

TEST_F(AdminApiTest, TheTokenGuardsEveryAdminPathReadsIncluded) {
    context_.admin_token = "s3cret-token";
    EXPECT_EQ(ask("GET", "/admin/routes").status, 401u);
    EXPECT_EQ(ask("GET", "/admin/routes", "", "Bearer wrong").status, 401u);
    EXPECT_EQ(ask("POST", "/admin/reload", "", "Bearer wrong").status, 401u);
    EXPECT_EQ(reloads_, 0);
    EXPECT_EQ(ask("GET", "/admin/routes", "", "Bearer s3cret-token").status, 200u);
    EXPECT_EQ(ask("GET", "/healthz").status, 200u);  // probes stay open
}

TEST_F(AdminApiTest, ReloadAnswersItsOutcomeAndIsRefusedWhileDraining) {
    auto answer = ask("POST", "/admin/reload");
    EXPECT_EQ(answer.status, 400u);
    EXPECT_EQ(answer.body, R"({"status":"rejected","errors":["admin.yaml:3:5: a problem"]})");
    EXPECT_EQ(reloads_, 1);
    draining_ = true;
    EXPECT_EQ(ask("POST", "/admin/reload").status, 503u);
    EXPECT_EQ(reloads_, 1);
}

TEST_F(AdminApiTest, RoutesComeFromThePublishedView) {
    const auto answer = ask("GET", "/admin/routes");
    EXPECT_EQ(answer.status, 200u);
    EXPECT_NE(answer.body.find(R"("name":"chat")"), std::string::npos) << answer.body;
    EXPECT_NE(answer.body.find(R"("state":"shadowing")"), std::string::npos) << answer.body;
    EXPECT_EQ(ask("POST", "/admin/routes").status, 405u);
}

TEST_F(AdminApiTest, VerdictsTakeAPositiveLimitAndAKnownRoute) {
    auto answer = ask("GET", "/admin/routes/chat/verdicts?limit=5");
    EXPECT_EQ(answer.status, 200u);
    EXPECT_EQ(answer.body, R"({"verdicts":[]})");
    EXPECT_EQ(ask("GET", "/admin/routes/chat/verdicts?limit=0").status, 400u);
    EXPECT_EQ(ask("GET", "/admin/routes/chat/verdicts?limit=5x").status, 400u);
    EXPECT_EQ(ask("GET", "/admin/routes/other/verdicts").status, 404u);
}

TEST_F(AdminApiTest, CommandsRunOnTheShadowThreadAndAnswerTheRoute) {
    auto pinned = ask("POST", "/admin/routes/chat/pin", R"({"target":"candidate"})");
    EXPECT_EQ(pinned.status, 200u) << pinned.body;
    EXPECT_NE(pinned.body.find(R"("live_target":"fast/fast-model")"), std::string::npos)
        << pinned.body;
    // The published view follows the command at once.
    EXPECT_NE(ask("GET", "/admin/routes").body.find(R"("state":"pinned")"), std::string::npos);
    EXPECT_EQ(ask("POST", "/admin/routes/chat/pin", R"({"target":"nobody"})").status, 400u);
    EXPECT_EQ(ask("POST", "/admin/routes/chat/explode").status, 404u);
    EXPECT_EQ(ask("POST", "/admin/routes/other/promote").status, 404u);
    EXPECT_EQ(ask("GET", "/admin/nothing").status, 404u);
}

TEST(QueryParameter, FindsExactNamesOnly) {
    EXPECT_EQ(query_parameter("/x?limit=5&x=1", "limit"), "5");
    EXPECT_EQ(query_parameter("/x?xlimit=5&limit=7", "limit"), "7");
    EXPECT_EQ(query_parameter("/x?limit", "limit"), "");
    EXPECT_EQ(query_parameter("/x", "limit"), "");
}

}  // namespace
}  // namespace turnout::gateway
