// A restart after kill -9: the route state on disk is the last one saved (once a second), the
// verdict log holds every verdict appended. The restored controller must hold every verdict that
// reached the log, each once.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "shadow/controller.hpp"
#include "shadow/store.hpp"

namespace turnout::shadow {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = TimePoint{} + 1'700'000'000s;

std::string scratch_dir(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("turnout-restore-" + name + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    return dir.string();
}

config::RouteConfig make_route() {
    config::RouteConfig route;
    route.name = "coding";
    route.shadow.sample_rate = 0.1;
    route.promotion.mode = config::PromotionMode::shadow;  // no flips: counting only
    route.promotion.window = 1000;
    route.promotion.min_samples = 50;
    return route;
}

/// A verdict log line as the shadow runtime writes it.
std::string verdict_line(const Controller& controller, TimePoint time, VerdictKind kind) {
    return R"({"time":")" + rfc3339(time) + R"(","route":"coding","seq":)" +
           std::to_string(controller.total_verdicts()) + R"(,"request_id":"r","score":null,)" +
           R"("pass":false,"verdict":")" + std::string(to_string(kind)) + R"("})";
}

/// Records and logs `count` verdicts one second apart (pass, pass, fail, error, ...).
void judge(Controller& controller, StateStore& store, TimePoint& now, int count) {
    constexpr VerdictKind kCycle[] = {VerdictKind::pass, VerdictKind::pass, VerdictKind::fail,
                                      VerdictKind::error};
    for (int i = 0; i < count; ++i) {
        now += 1s;
        const VerdictKind kind = kCycle[controller.total_verdicts() % 4];
        controller.record_verdict(now, kind);
        ASSERT_FALSE(store.append_verdict("coding", verdict_line(controller, now, kind)));
    }
}

VerdictLogTail tail_of(StateStore& store) {
    return [&store](std::size_t limit) { return store.latest_verdicts("coding", limit); };
}

TEST(ControllerRestore, VerdictsLoggedAfterTheLastSaveAreReplayedOnce) {
    const std::string dir = scratch_dir("replay");
    StateStore store(dir);
    const auto route = make_route();
    Controller live(route, "fp", kT0);
    TimePoint now = kT0;
    judge(live, store, now, 224);
    ASSERT_FALSE(store.save_route_state("coding", live.to_json()));
    judge(live, store, now, 47);  // logged, but the process dies before the next save

    const std::string saved = store.load_route_states().at("coding");
    const Controller restored = Controller::from_json(saved, route, "fp", now, tail_of(store));
    EXPECT_EQ(restored.total_verdicts(), 271u);
    const Evidence evidence = restored.status().evidence;
    EXPECT_EQ(evidence.samples + evidence.errors, 271u);
    EXPECT_EQ(restored.status(), live.status());

    // Restoring the same state again (a second crash before any save) counts nothing twice.
    const Controller again = Controller::from_json(saved, route, "fp", now, tail_of(store));
    EXPECT_EQ(again.status(), live.status());

    // A state saved after the last verdict replays nothing.
    const Controller current =
        Controller::from_json(live.to_json(), route, "fp", now, tail_of(store));
    EXPECT_EQ(current.status(), live.status());
    std::filesystem::remove_all(dir);
}

TEST(ControllerRestore, LongUnsavedRunIsReplayedWhole) {
    const std::string dir = scratch_dir("long");
    StateStore store(dir);
    const auto route = make_route();
    Controller live(route, "fp", kT0);
    TimePoint now = kT0;
    judge(live, store, now, 3);
    const std::string saved = live.to_json();
    judge(live, store, now, 700);  // more than the first read asks for (64 lines)
    const Controller restored = Controller::from_json(saved, route, "fp", now, tail_of(store));
    EXPECT_EQ(restored.total_verdicts(), 703u);
    EXPECT_EQ(restored.status(), live.status());
    std::filesystem::remove_all(dir);
}

TEST(ControllerRestore, LinesOfAnEarlierIncarnationOfTheRouteAreNotImported) {
    const std::string dir = scratch_dir("incarnation");
    StateStore store(dir);
    const auto route = make_route();
    TimePoint now = kT0;
    Controller earlier(route, "fp", now);
    judge(earlier, store, now, 30);  // numbered 1..30

    // The route was removed and added back: a fresh controller, saved before its first verdict.
    now += 1h;
    const Controller fresh(route, "fp", now);
    const Controller restored =
        Controller::from_json(fresh.to_json(), route, "fp", now, tail_of(store));
    EXPECT_EQ(restored.total_verdicts(), 0u);
    EXPECT_EQ(restored.status().evidence.samples, 0u);
    std::filesystem::remove_all(dir);
}

TEST(ControllerRestore, LogLineFields) {
    const auto logged = parse_logged_verdict(
        R"({"time":"2026-11-28T01:02:03.456Z","route":"r","seq":7,"verdict":"fail"})");
    ASSERT_TRUE(logged);
    EXPECT_EQ(logged->seq, 7u);
    EXPECT_EQ(logged->kind, VerdictKind::fail);
    EXPECT_EQ(rfc3339(logged->time), "2026-11-28T01:02:03.456Z");
    // Lines from before "seq" existed, and broken ones, are not replayable.
    for (const char* line :
         {R"({"time":"2026-11-28T01:02:03.456Z","route":"r","verdict":"fail"})",
          R"({"time":"2026-11-28T01:02:03.456Z","route":"r","seq":"7","verdict":"fail"})",
          R"({"time":"yesterday","route":"r","seq":7,"verdict":"fail"})",
          R"({"time":"2026-11-28T01:02:03.456Z","route":"r","seq":7,"verdict":"maybe"})",
          R"({"time":"2026-11-28T01:02:03.456Z","seq":7,"seq":8,"verdict":"pass"})", "{"}) {
        EXPECT_FALSE(parse_logged_verdict(line)) << line;
    }
}

}  // namespace
}  // namespace turnout::shadow
