#pragma once
/// The upstream pools of one thread: a worker, the shadow loop or `turnout eval` each own one
/// Client on their io_context, and make every upstream call through it.
///
/// Includes Beast (through pool.hpp): include it only from the Beast translation units.
///
/// Thread safety: none; a Client and its pools are touched only from their io_context's thread.

#include <map>
#include <memory>
#include <string>

#include "upstream/call.hpp"
#include "upstream/pool.hpp"
#include "upstream/providers.hpp"

namespace turnout::upstream {

class Client {
  public:
    /// Each provider's `max_connections` is divided by `sharers` (the threads that each hold a
    /// Client for the same providers), rounded up.
    Client(asio::any_io_executor executor, unsigned sharers = 1);

    /// Takes a new config's providers: pools whose connection settings did not change are
    /// kept (with their idle connections); the others are replaced. A request in flight keeps
    /// its old pool alive until it is done.
    void update(std::shared_ptr<const Providers> providers);
    const Providers& providers() const { return *providers_; }

    /// The pool of `provider`, created on the spot when update() has not seen it (a request
    /// on a newer config than this thread's, or a fallback on an older one).
    std::shared_ptr<UpstreamPool> pool_for(const config::ProviderConfig& provider);

    /// Everything a background call to `target` needs. The target's provider must exist.
    CallPlan plan_for(const config::TargetConfig& target);

    /// Drops every pool (their sockets belong to the io_context: before it goes).
    void clear() { pools_.clear(); }

  private:
    std::shared_ptr<UpstreamPool> make_pool(const config::ProviderConfig& provider) const;

    asio::any_io_executor executor_;
    unsigned sharers_;
    std::shared_ptr<const Providers> providers_;
    std::map<std::string, std::shared_ptr<UpstreamPool>, std::less<>> pools_;
};

/// The judge of a route as a call target: its provider and model, and `judge.body`.
config::TargetConfig judge_target(const config::JudgeConfig& judge);

}  // namespace turnout::upstream
