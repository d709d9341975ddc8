#pragma once
/// The shadow loop end to end on simulators: a primary (`slow`), a candidate (`fast`) and a
/// judge (`turnout simulate --role judge`), each its own process, behind one gateway whose route
/// `chat` evaluates the candidate. The state directory belongs to the stack, so a gateway can
/// be stopped and a new one started on the same state (restart tests).

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/fixtures.hpp"

namespace turnout::test {

class ShadowStack {
  public:
    static constexpr const char* kRoute = "chat";
    /// A route without candidate and judge: served, never evaluated.
    static constexpr const char* kPlainRoute = "plain";
    static constexpr const char* kPrimaryTarget = "slow/slow-model";
    static constexpr const char* kCandidateTarget = "fast/fast-model";
    static constexpr const char* kJudgeModel = "judge-model";

    /// Extra command-line arguments of each simulator (the judge always gets `--role judge`).
    ShadowStack(std::vector<std::string> primary_args, std::vector<std::string> candidate_args,
                std::vector<std::string> judge_args = {});
    ~ShadowStack();
    ShadowStack(const ShadowStack&) = delete;
    ShadowStack& operator=(const ShadowStack&) = delete;

    /// Starts the three simulators, then a gateway on the config `tweak` may edit first: the
    /// providers `slow`, `fast` and `judge`; route `chat` (slow/slow-model, candidate
    /// fast/fast-model, judge judge/judge-model, sample_rate 1.0, mode auto, window 100,
    /// min_samples 50, hold 0s, threshold 0.90 against 0.85 at 95%, ramp [100], timeout 10s);
    /// route `plain` -> slow/plain-model; state under the stack's own directory.
    ::testing::AssertionResult start(const std::function<void(GatewayConfig&)>& tweak = {},
                                     const std::map<std::string, std::string>& extra_env = {});

    /// SIGTERM to the running gateway, which must exit 0, then a new gateway on the same config
    /// file contents and state directory.
    ::testing::AssertionResult restart_gateway();

    SimulatorProcess& primary() { return primary_; }
    SimulatorProcess& candidate() { return candidate_; }
    SimulatorProcess& judge() { return judge_; }
    GatewayProcess& gateway() { return *gateway_; }
    const std::string& yaml() const { return yaml_; }
    std::string state_dir() const { return state_.path() + "/state"; }

    /// POST /_sim/config {"degrade_rate": RATE} on the candidate simulator.
    ::testing::AssertionResult set_candidate_degrade_rate(double rate);

    /// One chat request to route `chat` with `x-request-id: ID` and a prompt of its own.
    std::optional<HttpResponse> ask(const std::string& request_id, bool stream = false,
                                    Millis timeout = kWait);

    /// `count` requests (ids PREFIX-0 ...), sequentially; each must answer 200. The responses
    /// are appended to `responses` when given.
    ::testing::AssertionResult send(int count, const std::string& prefix, bool stream = false,
                                    std::vector<HttpResponse>* responses = nullptr);

    /// Keeps sending requests (ids PREFIX-0 ...), each 200, until route `chat` is in `state`
    /// (checked after every request) or `max_requests` were sent; then waits up to `timeout`
    /// for the state (the last verdicts may still be in flight).
    ::testing::AssertionResult send_until_state(const std::string& state, int max_requests,
                                                const std::string& prefix,
                                                Millis timeout = Millis(20000));

    /// Polls the verdicts of route `chat` until there are at least `count`; the document of the
    /// last poll is left in `out`.
    ::testing::AssertionResult wait_for_verdicts(std::size_t count, rapidjson::Document& out,
                                                 Millis timeout = Millis(20000));

  private:
    ::testing::AssertionResult start_gateway();

    TempDir state_;
    SimulatorProcess primary_;
    SimulatorProcess candidate_;
    SimulatorProcess judge_;
    std::map<std::string, std::string> env_;
    std::string yaml_;
    std::unique_ptr<GatewayProcess> gateway_;
};

/// The verdicts array of a GatewayProcess::admin_verdicts document (nullptr when absent).
const rapidjson::Value* verdict_list(const rapidjson::Value& doc);

/// The number of verdicts in the list whose `verdict` is `kind` ("pass", "fail", "error").
std::size_t count_verdicts(const rapidjson::Value& doc, const std::string& kind);

/// A number member of a JSON object, or nullopt when absent or not a number.
std::optional<double> json_number(const rapidjson::Value& doc, const std::string& path);

}  // namespace turnout::test
