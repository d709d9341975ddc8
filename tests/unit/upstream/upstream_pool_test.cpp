// UpstreamPool's waiting: a slot released to a waiter whose deadline has just passed still
// reaches a live waiter (issue 9, item 11: the swallowed wake-up gave a spurious 504).

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "upstream/pool.hpp"

namespace turnout::upstream {
namespace {

using namespace std::chrono_literals;
using tcp = asio::ip::tcp;
using Acquired = boost::system::result<ConnectionPtr>;

config::ProviderConfig local_provider(std::uint16_t port) {
    config::ProviderConfig provider;
    provider.name = "local";
    provider.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
    provider.address.host = "127.0.0.1";
    provider.address.port = port;
    return provider;
}

asio::awaitable<void> acquire_into(std::shared_ptr<UpstreamPool> pool, Clock::time_point deadline,
                                   std::optional<Acquired>* out) {
    *out = co_await pool->acquire(deadline);
}

/// A pool of one connection slot, that connection held by the test (the kernel completes the
/// pool's connects from the listener's backlog; nothing needs to accept).
class UpstreamPoolTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::optional<Acquired> holder;
        asio::co_spawn(io_, acquire_into(pool_, Clock::now() + 10s, &holder), asio::detached);
        io_.run();
        ASSERT_TRUE(holder && *holder) << (holder ? holder->error().message() : "not run");
        held_ = std::move(**holder);
        io_.restart();
    }

    asio::io_context io_;
    tcp::acceptor listener_{io_, {asio::ip::make_address("127.0.0.1"), 0}};
    std::shared_ptr<UpstreamPool> pool_ = std::make_shared<UpstreamPool>(
        io_.get_executor(), local_provider(listener_.local_endpoint().port()), nullptr, 1);
    ConnectionPtr held_;
};

TEST_F(UpstreamPoolTest, ReleaseRacingAnExpiredWaiterReachesTheNextWaiter) {
    // Two waiters on the one slot: the first with a short deadline, the second long.
    const auto first_deadline = Clock::now() + 200ms;
    std::optional<Acquired> first;
    std::optional<Acquired> second;
    asio::co_spawn(io_, acquire_into(pool_, first_deadline, &first), asio::detached);
    asio::co_spawn(io_, acquire_into(pool_, Clock::now() + 3s, &second), asio::detached);
    io_.poll();
    ASSERT_FALSE(first);
    ASSERT_FALSE(second);

    // The slot is released just before the first waiter's deadline. Holding the io thread
    // past both expiries makes the two timers fire in the same turn, the release first: it
    // picks the first waiter, whose expiry is already queued and cannot be cancelled. This
    // forces the ordering; it synchronises nothing.
    asio::steady_timer release_at(io_, first_deadline - 1ms);
    release_at.async_wait([&](const error_code&) { pool_->release(std::move(held_), true); });
    std::this_thread::sleep_until(first_deadline + 20ms);
    const auto resumed = Clock::now();
    io_.run();

    ASSERT_TRUE(first);
    EXPECT_FALSE(*first) << "the first waiter's deadline had passed";
    ASSERT_TRUE(second);
    EXPECT_TRUE(*second) << "the released slot was lost: " << second->error().message();
    EXPECT_LT(Clock::now() - resumed, 1s) << "the second waiter waited for its own deadline";
}

TEST_F(UpstreamPoolTest, ReleaseWakesAWaiterBeforeItsDeadline) {
    std::optional<Acquired> waiter;
    asio::co_spawn(io_, acquire_into(pool_, Clock::now() + 5s, &waiter), asio::detached);
    io_.poll();
    ASSERT_FALSE(waiter);
    pool_->release(std::move(held_), true);
    const auto released = Clock::now();
    io_.run();
    ASSERT_TRUE(waiter);
    EXPECT_TRUE(*waiter);
    EXPECT_LT(Clock::now() - released, 1s);
    EXPECT_EQ(pool_->connections_opened(), 1u) << "the idle connection was not reused";
}

}  // namespace
}  // namespace turnout::upstream
