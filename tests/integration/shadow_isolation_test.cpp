// The shadow loop never holds up a worker: with the shadow thread stuck in the state store's
// fdatasync (held there by the store's test gate, TURNOUT_TEST_STORE_SYNC_GATE), live requests
// and the admin reads a worker serves (/admin/routes, /healthz, /metrics) all complete. The
// admin calls that need the shadow thread (verdicts, commands) wait for it without blocking a
// worker, and complete once the store lets go.

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <string>

#include "tests/support/fixtures.hpp"
#include "tests/support/shadow_stack.hpp"

namespace turnout::test {
namespace {

bool exists(const std::string& path) { return std::filesystem::exists(path); }

TEST(ShadowIsolationTest, LiveTrafficAndAdminReadsCompleteWhileTheStoreIsBlocked) {
    TempDir gates;
    const std::string gate = gates.path() + "/sync-gate";
    const std::string waiting = gate + ".waiting";
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start({}, {{"TURNOUT_TEST_STORE_SYNC_GATE", gate}}));
    ASSERT_TRUE(stack.send(2, "before"));
    rapidjson::Document verdicts;
    ASSERT_TRUE(stack.wait_for_verdicts(2, verdicts));

    // Close the gate, then give the store something to sync: the next verdict's tick.
    gates.write_file("sync-gate", "");
    ASSERT_TRUE(stack.send(1, "trigger"));
    ASSERT_TRUE(wait_for([&] { return exists(waiting); }, kWait,
                         "the shadow thread waiting in the store's sync"));

    // Everything a worker answers on its own completes while the shadow thread is stuck.
    ASSERT_TRUE(stack.send(3, "during"));
    auto plain = stack.gateway().chat(R"({"model":"plain-model","messages":[]})");
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->status, 200) << plain->body;
    auto routes = stack.gateway().admin_get("/admin/routes");
    ASSERT_TRUE(routes);
    EXPECT_EQ(routes->status, 200) << routes->body;
    auto doc = parse_json(routes->body);
    ASSERT_FALSE(doc.HasParseError()) << routes->body;
    EXPECT_EQ(json_string(doc, "routes/0/name"), ShadowStack::kRoute) << routes->body;
    auto health = stack.gateway().admin_get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    auto metrics = stack.gateway().admin_get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 200);

    // A command needs the shadow thread: it waits (on another connection) for the gate.
    auto promote = std::async(std::launch::async, [&] {
        return stack.gateway().admin_post("/admin/routes/chat/pin", R"({"target":"primary"})");
    });
    EXPECT_EQ(promote.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
    ASSERT_TRUE(exists(waiting)) << "the store let go before the checks above were done";

    std::filesystem::remove(gate);
    auto pinned = promote.get();
    ASSERT_TRUE(pinned);
    EXPECT_EQ(pinned->status, 200) << pinned->body;
    // The verdicts of the pairs sent meanwhile were judged and logged once the store resumed.
    ASSERT_TRUE(stack.wait_for_verdicts(6, verdicts));
    EXPECT_FALSE(exists(waiting));
}

}  // namespace
}  // namespace turnout::test
