#pragma once
/// The shadow loop at run time: mirrored copies of sampled live requests, the judge calls,
/// the per-route controllers, the durable store and the admin view of it all. The gateway
/// sees only this small interface (in the spirit of Envoy's ShadowWriter): offer a captured
/// pair, read the published view, ask the admin questions.
///
/// No Beast here: the implementation (runtime.cpp) owns the io_context and the pools.
///
/// Threading: every controller, the store and the pools live on the shadow's own thread and
/// io_context, so background calls never queue behind (or ahead of) live traffic on a worker,
/// and nothing a worker does waits for them:
/// - the live path reads view() (an immutable snapshot swapped atomically) and the per-route
///   atomics in it, and offer() only posts;
/// - routes_json() reads the last published admin view (no lock, no I/O);
/// - verdicts_json() and command() run on the shadow thread; the calling coroutine is
///   suspended meanwhile, its thread free for other work;
/// - configure() may be called from any thread; once start()ed it runs on the shadow thread
///   and the caller waits for it (the control thread does, on reload).

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "routing/route_table.hpp"

namespace turnout::metrics {
class Metrics;
}
namespace turnout::upstream {
class Providers;
}

namespace turnout::shadow {

/// Live-path counters of one route, drained by the shadow thread once a second.
struct RouteChannel {
    std::atomic<std::uint64_t> candidate_ok{0};
    std::atomic<std::uint64_t> candidate_errors{0};
    std::atomic<std::uint64_t> primary_requests{0};
    std::atomic<std::uint32_t> pending{0};  ///< offered jobs not finished yet
    /// Samples dropped on the live path (queue full, too big), counted into the metrics by the
    /// shadow thread: the live path takes no lock for them.
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint32_t> capacity{0};  ///< max_inflight + queue
    std::atomic<double> mirror_rate{0.0};
};

/// What the live path reads: which side serves, and how much to mirror.
struct ShadowView {
    routing::RouteStates states;
    std::map<std::string, std::shared_ptr<RouteChannel>, std::less<>> channels;
};

/// One sampled live request with its answer, as captured on the live path.
struct ShadowJob {
    std::string route;
    std::shared_ptr<RouteChannel> channel;  ///< the route incarnation that accepted the job
    std::string request_id;
    std::string request_body;  ///< the client's JSON
    bool served_by_candidate = false;
    std::string live_body;  ///< non-streamed answer (OpenAI shape), or empty
    std::vector<std::string> live_stream_payloads;  ///< SSE data payloads of a streamed answer
    double live_latency_ms = 0;
    double live_ttft_ms = 0;
    std::uint64_t live_input_tokens = 0;
    std::uint64_t live_output_tokens = 0;
};

class ShadowRuntime {
  public:
    /// Opens the store under `state_path` (throws on an unusable directory: start-up only).
    ShadowRuntime(std::string state_path, metrics::Metrics* metrics);
    ~ShadowRuntime();
    ShadowRuntime(const ShadowRuntime&) = delete;
    ShadowRuntime& operator=(const ShadowRuntime&) = delete;

    /// Applies a config (at start and after each reload): controllers are created, restored
    /// from the store, or reconfigured. Any thread; returns once applied.
    void configure(std::shared_ptr<const upstream::Providers> providers);
    void start();
    /// Stops the thread, then saves every route's state. Idempotent.
    void stop();

    std::shared_ptr<const ShadowView> view() const;

    /// Live path: hands a sampled pair over; false when the route's queue is full (dropped
    /// and counted). Never blocks.
    bool offer(ShadowJob job);

    /// `{"routes":[...]}` as last published by the shadow thread (after every verdict, tick,
    /// command and reload). Any thread; never waits.
    std::string routes_json() const;
    /// The latest verdicts of a route, read from its log on the shadow thread; nullopt for an
    /// unknown route.
    boost::asio::awaitable<std::optional<std::string>> verdicts_json(std::string route,
                                                                     std::size_t limit);
    enum class Command { promote, rollback, pin_primary, pin_candidate, unpin };
    struct CommandResult {
        bool known_route = false;
        bool refused = false;
        std::string json;  ///< the route's JSON after the command
    };
    /// A manual command, applied (and stored) on the shadow thread.
    boost::asio::awaitable<CommandResult> command(std::string route, Command command);

  private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace turnout::shadow
