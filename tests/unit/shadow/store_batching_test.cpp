// Batched syncing (StoreOptions::sync_every_append = false): every append is still one
// write(2), so a process killed with SIGKILL loses nothing it appended; only sync_logs()
// waits for the disk.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "shadow/store.hpp"

namespace turnout::shadow {
namespace {

std::string scratch_dir(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("turnout-store-batching-" + name + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    return dir.string();
}

std::string verdict_line(int n) {
    return R"({"route":"r","request_id":"id-)" + std::to_string(n) + R"(","score":97})";
}

TEST(StoreBatching, AppendsWithoutSyncSurviveSigkill) {
    const std::string dir = scratch_dir("kill");
    constexpr int kLines = 500;
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        StoreOptions options;
        options.sync_every_append = false;
        StateStore store(dir, options);
        for (int i = 0; i < kLines; ++i) {
            if (store.append_verdict("r", verdict_line(i))) _exit(3);
        }
        raise(SIGKILL);  // no sync_logs(), no destructor: as a kill -9 would leave it
        _exit(4);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child should have been killed, status " << status;

    StateStore reopened(dir);
    const auto lines = reopened.all_verdicts("r");
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(kLines));
    EXPECT_EQ(lines.front(), verdict_line(0));
    EXPECT_EQ(lines.back(), verdict_line(kLines - 1));
    std::filesystem::remove_all(dir);
}

TEST(StoreBatching, SyncLogsSucceedsAndIsIdempotent) {
    const std::string dir = scratch_dir("sync");
    StoreOptions options;
    options.sync_every_append = false;
    StateStore store(dir, options);
    EXPECT_FALSE(store.sync_logs());  // nothing appended yet: nothing to do, no error
    ASSERT_FALSE(store.append_verdict("r", verdict_line(1)));
    ASSERT_FALSE(store.append_event(R"({"route":"r","event":{}})"));
    EXPECT_FALSE(store.sync_logs());
    EXPECT_FALSE(store.sync_logs());
    EXPECT_EQ(store.latest_verdicts("r", 10).size(), 1u);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace turnout::shadow
