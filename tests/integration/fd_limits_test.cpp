// Out of file descriptors (issue 9, item 5): the gateway neither spins nor goes deaf. It raises
// its soft RLIMIT_NOFILE, caps limits.max_connections to what the limit leaves room for, backs
// off when accept fails with EMFILE, and keeps a descriptor for the admin listener.

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

/// CPU time (user + system, all threads) of process `pid`, from /proc/PID/stat.
std::optional<Millis> cpu_time(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const auto comm_end = text.rfind(')');  // the command name may hold spaces
    if (comm_end == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(comm_end + 1));
    std::vector<std::string> field;  // field[0] is field 3 of proc(5), `state`
    for (std::string f; fields >> f;) field.push_back(f);
    if (field.size() < 13) return std::nullopt;
    const long long ticks = std::stoll(field[11]) + std::stoll(field[12]);  // utime, stime
    return Millis(ticks * 1000 / ::sysconf(_SC_CLK_TCK));
}

std::size_t open_descriptors(pid_t pid) {
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
        ++count;
    }
    return count;
}

/// A gateway started under a given RLIMIT_NOFILE; its provider is a closed port: these tests
/// never reach an upstream.
class LimitedGateway {
  public:
    ::testing::AssertionResult start(std::optional<std::pair<std::uint64_t, std::uint64_t>> nofile,
                                     const std::function<void(GatewayConfig&)>& tweak = {}) {
        GatewayConfig config =
            GatewayConfig::for_simulator("http://127.0.0.1:" + std::to_string(closed_.port()));
        if (tweak) tweak(config);
        GatewayOptions options;
        options.yaml = config.yaml();
        options.max_open_files = nofile;
        gateway_ = std::make_unique<GatewayProcess>(options);
        if (auto started = gateway_->start(); !started) return started;
        api_port_ = gateway_->api_port();
        admin_port_ = gateway_->admin_port();
        return ::testing::AssertionSuccess();
    }

    /// GET /healthz on the admin port, answered 200. The wait (kWait) is only a guard: out of
    /// descriptors, an admin listener without its reserve descriptor never answers at all while
    /// the clients hold theirs.
    ::testing::AssertionResult healthz_answers() {
        RawConnection client(admin_port_);
        if (!client.connected()) return ::testing::AssertionFailure() << client.error();
        if (!client.send_request("GET", "/healthz", {})) {
            return ::testing::AssertionFailure() << "send: " << client.error();
        }
        auto response = client.read_response(kWait);
        if (!response || response->status != 200) {
            return ::testing::AssertionFailure()
                   << "/healthz not answered 200 within " << kWait.count() << " ms";
        }
        return ::testing::AssertionSuccess();
    }

    /// Over about `window` of wall time, probing /healthz every 200 ms (each answered), the
    /// gateway's CPU time stays under 30% of the wall time. An accept loop spinning on EMFILE
    /// burns a whole core per worker; a slow machine only stretches the wall time.
    ::testing::AssertionResult idles_while_probed(Millis window) {
        const auto cpu_before = cpu_time(pid());
        const auto started = Clock::now();
        while (Clock::now() - started < window) {
            if (auto probe = healthz_answers(); !probe) return probe;
            std::this_thread::sleep_for(Millis(200));  // paces the probes; synchronises nothing
        }
        const auto cpu_after = cpu_time(pid());
        const auto wall = std::chrono::duration_cast<Millis>(Clock::now() - started);
        if (!cpu_before || !cpu_after) return ::testing::AssertionFailure() << "no /proc stat";
        const auto cpu = *cpu_after - *cpu_before;
        if (cpu * 10 >= wall * 3) {
            return ::testing::AssertionFailure() << "the gateway used " << cpu.count()
                                                 << " ms of CPU in " << wall.count() << " ms";
        }
        return ::testing::AssertionSuccess() << cpu.count() << " ms CPU in " << wall.count();
    }

    /// Opens `count` idle client connections to the API port (they send nothing).
    void open_idle_clients(int count) {
        for (int i = 0; i < count; ++i) {
            clients_.push_back(std::make_unique<RawConnection>(api_port_));
            ASSERT_TRUE(clients_.back()->connected()) << clients_.back()->error();
        }
    }

    std::size_t log_count(const std::regex& pattern) const {
        std::size_t n = 0;
        for (const auto& line : gateway_->log_lines()) {
            n += std::regex_search(line, pattern) ? 1 : 0;
        }
        return n;
    }

    pid_t pid() { return gateway_->process().pid(); }
    ChildProcess& process() { return gateway_->process(); }

  private:
    ClosedPort closed_;
    std::unique_ptr<GatewayProcess> gateway_;
    std::vector<std::unique_ptr<RawConnection>> clients_;
    std::uint16_t api_port_ = 0;
    std::uint16_t admin_port_ = 0;
};

TEST(FdLimitsTest, RaisesTheSoftLimitAndCapsMaxConnections) {
    // Soft 128, hard 256: raised to 256. The one provider (max_connections 64) reserves
    // 64 + 2 * 64 = 192, leaving 64, which is also the floor of a quarter of the limit.
    LimitedGateway gateway;
    ASSERT_TRUE(gateway.start(std::pair<std::uint64_t, std::uint64_t>{128, 256},
                              [](GatewayConfig& c) { c.limit("max_connections", "2000"); }));

    // Far more idle clients than descriptors: the gateway holds 64 and leaves the rest queued
    // in the kernel, never reaching EMFILE.
    gateway.open_idle_clients(300);
    EXPECT_TRUE(gateway.idles_while_probed(Millis(3000)));
    EXPECT_EQ(gateway.log_count(std::regex("accept paused")), 0u) << gateway.process().output();

    rlimit limit{};
    ASSERT_EQ(::prlimit(gateway.pid(), RLIMIT_NOFILE, nullptr, &limit), 0);
    EXPECT_EQ(limit.rlim_cur, 256u);
    EXPECT_EQ(gateway.log_count(std::regex("file descriptor limit raised")), 1u);
    auto capped = gateway.process().wait_for_line(
        std::regex("max_connections capped by the file descriptor limit"), Millis(0));
    ASSERT_TRUE(capped) << gateway.process().output();
    EXPECT_NE(capped->find("\"effective\":64"), std::string::npos) << *capped;
}

TEST(FdLimitsTest, AcceptBacksOffOnEmfileAndTheAdminListenerStillAnswers) {
    // Descriptors can run out below the cap too (files, upstreams, another limit): here the
    // limit drops under the gateway's feet to a few more than it holds.
    LimitedGateway gateway;
    ASSERT_TRUE(gateway.start(std::nullopt));
    ASSERT_TRUE(gateway.healthz_answers());
    const rlim_t tight = open_descriptors(gateway.pid()) + 8;
    const rlimit limit{tight, tight};
    ASSERT_EQ(::prlimit(gateway.pid(), RLIMIT_NOFILE, &limit, nullptr), 0) << std::strerror(errno);

    gateway.open_idle_clients(100);
    const pid_t pid = gateway.pid();
    ASSERT_TRUE(wait_for([&] { return open_descriptors(pid) >= tight; }, kWait,
                         "the gateway holding every descriptor it may"));
    EXPECT_TRUE(gateway.idles_while_probed(Millis(3000)));
    // Once per listener and episode (two API acceptors and the admin one), not once per retry
    // (which would be some 60 lines by now). An episode ends whenever a descriptor frees up
    // and a connection gets in, so allow a few.
    const auto paused = gateway.log_count(std::regex("accept paused: out of file descriptors"));
    EXPECT_GE(paused, 1u);
    EXPECT_LE(paused, 8u) << gateway.process().output();
}

}  // namespace
}  // namespace turnout::test
