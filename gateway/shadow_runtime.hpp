#pragma once
/// The shadow loop at run time: mirrored copies of sampled live requests, the judge calls,
/// the per-route controllers, the durable store and the admin view of it all.
///
/// Includes Beast: include it only from the data-plane translation units.
///
/// Threading: everything here runs on the shadow's own thread and io_context, with its own
/// upstream pools, so background calls never queue behind (or ahead of) live traffic on a
/// worker. The live path touches only `published()` (an immutable snapshot swapped
/// atomically) and the per-route atomics in it; admin calls and configure() take `mutex_`,
/// which is never held across an asynchronous wait.

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/upstream.hpp"
#include "metrics/metrics.hpp"
#include "routing/route_table.hpp"
#include "shadow/controller.hpp"
#include "shadow/store.hpp"

namespace turnout::gateway {

struct Snapshot;

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
    /// from the store, or reconfigured. Any thread.
    void configure(std::shared_ptr<const Snapshot> snapshot);
    void start();
    void stop();

    std::shared_ptr<const ShadowView> view() const { return view_.load(); }

    /// Live path: hands a sampled pair over; false when the route's queue is full (dropped
    /// and counted). Never blocks.
    bool offer(ShadowJob job);

    // Admin API (any thread). Each answers the JSON body, or nullopt for an unknown route.
    std::string routes_json();
    std::optional<std::string> verdicts_json(const std::string& route, std::size_t limit);
    enum class Command { promote, rollback, pin_primary, pin_candidate, unpin };
    struct CommandResult {
        bool known_route = false;
        bool refused = false;
        std::string json;  ///< the route's JSON after the command
    };
    CommandResult command(const std::string& route, Command command);

private:
    struct SideStats;
    struct Route;
    class JobSlot;

    asio::awaitable<void> process(ShadowJob job);
    asio::awaitable<void> tick_loop();
    void pump(Route& route);
    void tick_all();
    void handle_events(Route& route, shadow::TimePoint now);
    void publish();
    std::string route_json(const Route& route) const;
    std::shared_ptr<UpstreamPool> pool_for(const routing::ProviderConfig& provider);

    // Member order matters: io_ is destroyed first, and destroying it destroys the coroutine
    // frames of jobs in flight, whose JobSlot then needs mutex_ and routes_ still alive.
    std::unique_ptr<shadow::StateStore> store_;
    metrics::Metrics* metrics_;
    std::thread thread_;
    mutable std::mutex mutex_;
    bool stopped_ = false;  ///< guarded by mutex_: no new work once stop() began
    std::shared_ptr<const Snapshot> snapshot_;
    std::map<std::string, std::unique_ptr<Route>, std::less<>> routes_;
    std::map<std::string, std::shared_ptr<UpstreamPool>, std::less<>> pools_;
    std::atomic<std::shared_ptr<const ShadowView>> view_;
    asio::io_context io_{1};
};

}  // namespace turnout::gateway
