#include "upstream/circuit_breaker.hpp"

namespace turnout::upstream {

CircuitBreaker::Admission CircuitBreaker::admit(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (!open_) return Admission::allowed;
    if (now < open_until_ || probe_out_) return Admission::rejected;
    probe_out_ = true;
    return Admission::probe;
}

void CircuitBreaker::record_success() {
    std::lock_guard lock(mutex_);
    consecutive_failures_ = 0;
    open_ = false;
    probe_out_ = false;
}

bool CircuitBreaker::record_failure(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (config_.failures == 0) return false;
    const bool was_probe = probe_out_;
    probe_out_ = false;
    if (open_ && !was_probe) return false;  // a request admitted before the circuit opened
    ++consecutive_failures_;
    if (!was_probe && consecutive_failures_ < config_.failures) return false;
    open_ = true;
    open_until_ = now + config_.cooldown;
    return !was_probe;
}

void CircuitBreaker::abandon_probe() {
    std::lock_guard lock(mutex_);
    probe_out_ = false;
}

CircuitBreaker::Clock::duration CircuitBreaker::retry_after(Clock::time_point now) const {
    std::lock_guard lock(mutex_);
    if (!open_ || now >= open_until_) return Clock::duration::zero();
    return open_until_ - now;
}

CircuitBreaker::State CircuitBreaker::state(Clock::time_point now) const {
    std::lock_guard lock(mutex_);
    if (!open_) return State::closed;
    return now < open_until_ && !probe_out_ ? State::open : State::half_open;
}

void CircuitBreaker::reconfigure(config::CircuitBreakerConfig config) {
    std::lock_guard lock(mutex_);
    if (config.failures == config_.failures && config.cooldown == config_.cooldown) return;
    config_ = config;
    if (config_.failures == 0) {
        open_ = false;
        probe_out_ = false;
        consecutive_failures_ = 0;
    }
}

std::shared_ptr<CircuitBreaker> CircuitBreakers::of(const config::ProviderConfig& provider) {
    std::shared_ptr<CircuitBreaker> breaker;
    {
        std::lock_guard lock(mutex_);
        auto& slot = breakers_[provider.name];
        if (!slot) slot = std::make_shared<CircuitBreaker>(provider.circuit_breaker);
        breaker = slot;
    }
    breaker->reconfigure(provider.circuit_breaker);
    return breaker;
}

}  // namespace turnout::upstream
