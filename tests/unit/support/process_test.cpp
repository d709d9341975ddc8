// The harness turns a child's sanitizer report into a test failure: fake children (sh) print
// reports as the ASan, TSan and UBSan runtimes do, and the failure must be recorded whether the
// child exits, aborts or is still running when the test ends.
#include "tests/support/process.hpp"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

namespace turnout::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kTsanReport =
    "printf '%s\\n' 'log line before' '==================' "
    "'WARNING: ThreadSanitizer: data race (pid=4242)' "
    "'  Write of size 8 at 0x7b0400000010 by thread T2:' "
    "'    #0 turnout::gateway::Server::reload() server_beast.cpp:120' "
    "'SUMMARY: ThreadSanitizer: data race server_beast.cpp:120 in reload' "
    "'==================' 'log line after'";

constexpr const char* kAsanReport =
    "printf '%s\\n' '==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020' "
    "'    #0 0x55 in turnout::gateway::relay session_beast.cpp:300' "
    "'SUMMARY: AddressSanitizer: heap-use-after-free session_beast.cpp:300 in relay'";

constexpr const char* kUbsanReport =
    "printf '%s\\n' 'gateway/sse.cpp:42:13: runtime error: signed integer overflow' "
    "'SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior gateway/sse.cpp:42:13 in '";

std::unique_ptr<ChildProcess> shell(const std::string& script) {
    return std::make_unique<ChildProcess>(ProcessOptions{{"/bin/sh", "-c", script}, {}, {}, {}});
}

TEST(SanitizerReport, FindsTheReportFromItsFirstLineToItsSummary) {
    auto report =
        sanitizer_report({"starting", "WARNING: ThreadSanitizer: data race (pid=1)",
                          "  Write of size 8", "SUMMARY: ThreadSanitizer: data race x", "after"});
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(*report,
              "WARNING: ThreadSanitizer: data race (pid=1)\n  Write of size 8\n"
              "SUMMARY: ThreadSanitizer: data race x\n");
}

TEST(SanitizerReport, RecognisesEachRuntime) {
    EXPECT_TRUE(sanitizer_report({"==7==ERROR: AddressSanitizer: stack-overflow on address"}));
    EXPECT_TRUE(sanitizer_report({"==7==ERROR: LeakSanitizer: detected memory leaks"}));
    EXPECT_TRUE(sanitizer_report({"a.cpp:1:2: runtime error: load of misaligned address"}));
    EXPECT_TRUE(sanitizer_report({"ThreadSanitizer: CHECK failed: tsan_rtl.cpp:100"}));
    EXPECT_TRUE(sanitizer_report({"SUMMARY: AddressSanitizer: 24 byte(s) leaked"}));
}

TEST(SanitizerReport, IgnoresOrdinaryLogs) {
    EXPECT_FALSE(sanitizer_report({}));
    EXPECT_FALSE(sanitizer_report({R"({"level":"error","msg":"upstream error: reset"})",
                                   "SUMMARY: 3 requests", "ERROR: bad config"}));
}

TEST(ChildSanitizerReport, FailsTheTestWhenTheChildExitsAfterAReport) {
    // TSan with halt_on_error=1:exitcode=66, as tests/run-all.sh runs it.
    EXPECT_NONFATAL_FAILURE(
        {
            auto child = shell(std::string(kTsanReport) + "; exit 66");
            EXPECT_EQ(child->wait_exit(10s), 66);
        },
        "WARNING: ThreadSanitizer: data race");
}

TEST(ChildSanitizerReport, FailsTheTestWhenTheChildIsStillRunning) {
    // TSan without halt_on_error reports and carries on; the test kills the child at its end.
    EXPECT_NONFATAL_FAILURE(
        {
            auto child = shell(std::string(kTsanReport) + "; exec sleep 30");
            EXPECT_TRUE(child->wait_for_line(
                [](const std::string& line) { return line == "log line after"; }, 10s));
        },
        "SUMMARY: ThreadSanitizer: data race server_beast.cpp:120");
}

TEST(ChildSanitizerReport, FailsTheTestWhenTheChildAborts) {
    // ASan with abort_on_error=1: the report, then SIGABRT.
    EXPECT_NONFATAL_FAILURE(
        {
            auto child = shell(std::string(kAsanReport) + "; kill -ABRT $$");
            EXPECT_EQ(child->wait_exit(10s), 128 + 6);
        },
        "heap-use-after-free");
}

TEST(ChildSanitizerReport, FailsARunCommand) {
    EXPECT_NONFATAL_FAILURE(
        {
            auto result = run_command({{"/bin/sh", "-c", kUbsanReport}, {}, {}, {}}, 10s);
            EXPECT_EQ(result.exit_code, 0);
        },
        "runtime error: signed integer overflow");
}

TEST(ChildSanitizerReport, ACleanChildFailsNothing) {
    auto child = shell("echo listening; echo 'ERROR: not a sanitizer'; exit 3");
    EXPECT_EQ(child->wait_exit(10s), 3);
    child.reset();  // a report here would be an ADD_FAILURE in this test
}

}  // namespace
}  // namespace turnout::test
