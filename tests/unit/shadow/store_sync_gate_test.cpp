// The store's test-only sync gate (TURNOUT_TEST_STORE_SYNC_GATE, store.hpp): while the gate's
// file exists, each fsync / fdatasync of the store waits, with `<gate>.waiting` showing it.
// The tests assert the order of events (the store waiting, the gate opened, the sync done),
// never timings; the deadlines only bound a broken build.

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "shadow/store.hpp"

namespace turnout::shadow {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;

std::string scratch_dir() {
    std::string pattern = (fs::temp_directory_path() / "turnout-sync-gate-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    return pattern;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

void touch(const std::string& path) { std::ofstream(path) << "held\n"; }

/// Polls until `done()` holds; false when the deadline passes first.
bool eventually(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

/// A scratch directory with a store whose gate is `<dir>/gate`. The environment variable is
/// set only while the store is constructed, so the gated syncs below also show that it is
/// read then, not at each sync.
class GatedStore : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = scratch_dir();
        gate_ = dir_ + "/gate";
        ::setenv(kStoreSyncGateEnv, gate_.c_str(), 1);
        StoreOptions options;
        options.sync_every_append = false;  // only sync_logs() syncs the logs
        store_.emplace(dir_ + "/state", options);
        ::unsetenv(kStoreSyncGateEnv);
    }
    void TearDown() override {
        fs::remove(gate_);  // never leave a sync waiting behind a failed assertion
        if (worker_.joinable()) worker_.join();
        store_.reset();
        fs::remove_all(dir_);
    }

    /// Runs `sync` on a worker thread while the gate is held, and returns the events in the
    /// order they happened.
    std::vector<std::string> run_gated(std::function<std::error_code()> sync) {
        touch(gate_);
        worker_ = std::thread([this, sync = std::move(sync)] {
            const std::error_code ec = sync();
            record(ec ? "sync failed: " + ec.message() : "sync done");
        });
        if (eventually([&] { return exists(waiting()); })) {
            record("store waiting");
        }
        record("gate opened");
        fs::remove(gate_);
        worker_.join();
        EXPECT_FALSE(exists(waiting())) << "the store removes <gate>.waiting when it goes on";
        std::lock_guard lock(mutex_);
        return events_;
    }

    std::string waiting() const { return gate_ + ".waiting"; }

    void record(const std::string& event) {
        std::lock_guard lock(mutex_);
        events_.push_back(event);
    }

    std::string dir_;
    std::string gate_;
    std::optional<StateStore> store_;
    std::thread worker_;
    std::mutex mutex_;
    std::vector<std::string> events_;
};

const std::vector<std::string> kGatedOrder = {"store waiting", "gate opened", "sync done"};

std::string verdict_line() { return R"({"route":"r","request_id":"id-1","score":97})"; }

TEST_F(GatedStore, LogSyncWaitsUntilTheGateIsRemoved) {
    ASSERT_FALSE(store_->append_verdict("r", verdict_line()));  // no sync yet: no wait
    EXPECT_EQ(run_gated([this] { return store_->sync_logs(); }), kGatedOrder);
    EXPECT_EQ(store_->latest_verdicts("r", 10).size(), 1u);
}

TEST_F(GatedStore, RouteStateSaveWaitsUntilTheGateIsRemoved) {
    EXPECT_EQ(run_gated([this] { return store_->save_route_state("r", R"({"state":1})"); }),
              kGatedOrder);
    EXPECT_EQ(store_->load_route_states().at("r"), R"({"state":1})");
}

TEST_F(GatedStore, WithoutTheGateFileNothingWaits) {
    ASSERT_FALSE(store_->append_verdict("r", verdict_line()));
    EXPECT_FALSE(store_->sync_logs());  // the gate's path does not exist: straight through
    EXPECT_FALSE(store_->save_route_state("r", "{}"));
    EXPECT_FALSE(exists(waiting()));
}

}  // namespace
}  // namespace turnout::shadow
