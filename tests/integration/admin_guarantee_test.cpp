// /admin/routes carries each evaluated route's promise in one line (`guarantee`), from its
// confidence and thresholds, and the running flip test's bound (`sprt_accept`, the first of the
// budget-spending tests before any rejection: ln(pi^2 / (6 x 0.05))).

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>

#include "tests/support/fixtures.hpp"
#include "tests/support/shadow_stack.hpp"

namespace turnout::test {
namespace {

TEST(AdminGuaranteeTest, RoutesListTheirAnyHorizonGuarantee) {
    ShadowStack stack({}, {});
    ASSERT_TRUE(stack.start());
    auto response = stack.gateway().admin_get("/admin/routes");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    auto doc = parse_json(response->body);
    ASSERT_FALSE(doc.HasParseError()) << response->body;
    const auto* routes = json_at(doc, "routes");
    ASSERT_TRUE(routes && routes->IsArray() && routes->Size() == 1u) << response->body;
    const auto& r = (*routes)[0];
    EXPECT_EQ(json_string(r, "guarantee"),
              "false switch at most 5% at any horizon (pass rate <= 0.85), false rollback at "
              "most 5% (>= 0.9)")
        << response->body;
    const double first = std::log(std::numbers::pi * std::numbers::pi / (6 * 0.05));
    EXPECT_NEAR(json_number(r, "sprt_accept").value_or(0), first, 1e-9) << response->body;
    EXPECT_NEAR(json_number(r, "sprt_reject").value_or(0), std::log(0.05), 1e-9);
}

}  // namespace
}  // namespace turnout::test
