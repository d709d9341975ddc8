#pragma once
/// One provider's circuit breaker (Envoy's consecutive-5xx outlier detection, Hystrix's
/// half-open probe): `failures` consecutive live failures open it for `cooldown`; then one
/// request is let through as a probe; its success closes the circuit, its failure opens it for
/// another cooldown. Plain C++, time passed in, no sockets.
///
/// Thread safety: every member may be called from any worker thread (one mutex, held for a
/// few instructions). Lifetime: shared by the config snapshots that know the provider, so its
/// state survives reloads.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.hpp"

namespace turnout::upstream {

class CircuitBreaker {
  public:
    using Clock = std::chrono::steady_clock;
    enum class State { closed, open, half_open };
    enum class Admission {
        allowed,   ///< closed: go ahead
        probe,     ///< the cooldown is over: this request tests the provider
        rejected,  ///< open (or a probe is already out): do not contact the provider
    };

    explicit CircuitBreaker(config::CircuitBreakerConfig config) : config_(config) {}

    /// Asks before contacting the provider. A caller that got `probe` must report its outcome.
    Admission admit(Clock::time_point now);
    void record_success();
    /// Returns true when this failure opened the circuit (for a log line).
    bool record_failure(Clock::time_point now);
    /// A probe that ended without an outcome (client gone, request refused before sending):
    /// the next request may probe instead.
    void abandon_probe();

    /// Until the circuit may be probed again (zero when closed): the Retry-After.
    Clock::duration retry_after(Clock::time_point now) const;
    State state(Clock::time_point now) const;
    void reconfigure(config::CircuitBreakerConfig config);

  private:
    mutable std::mutex mutex_;
    config::CircuitBreakerConfig config_;
    std::uint32_t consecutive_failures_ = 0;
    bool open_ = false;
    bool probe_out_ = false;
    Clock::time_point open_until_{};
};

/// The breakers of all providers, by name, for the life of the process: a reload keeps a
/// provider's state (and applies its new settings). Thread safe.
class CircuitBreakers {
  public:
    std::shared_ptr<CircuitBreaker> of(const config::ProviderConfig& provider);

  private:
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<CircuitBreaker>, std::less<>> breakers_;
};

}  // namespace turnout::upstream
