#pragma once
/// The gateway's run-time state shared by server.cpp (process: workers, listeners, signals,
/// reload, drain) and the session files (connections, the proxy, the admin API).
///
/// Includes Beast: include it only from the gateway's Beast translation units.
///
/// Thread safety: `Snapshot` is immutable and swapped atomically on reload; a request reads
/// the snapshot once at its start and finishes on it. A `Worker` and everything it owns is
/// touched only from its own thread.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "gateway/admin_api.hpp"
#include "gateway/request_record.hpp"
#include "metrics/metrics.hpp"
#include "routing/keys.hpp"
#include "routing/route_table.hpp"
#include "shadow/runtime.hpp"
#include "upstream/circuit_breaker.hpp"
#include "upstream/client.hpp"

namespace turnout::gateway {

using shadow::ShadowRuntime;
using upstream::CircuitBreakers;
using upstream::error_code;

using tcp = asio::ip::tcp;

/// Everything derived from one validated config, built off the data path.
struct Snapshot {
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const routing::RouteTable> routes;
    std::shared_ptr<const routing::KeyRing> keys;
    std::shared_ptr<const upstream::Providers> providers;  ///< credentials (secrets), TLS
    std::string admin_token;                               ///< empty = /admin/* open. Secret.
    std::string models_json;

    /// Throws std::runtime_error when a secret env var is unset or a ca_file unreadable.
    static std::shared_ptr<const Snapshot> build(std::shared_ptr<const config::Config> config);
};

/// Process-wide state shared by all workers.
struct Shared {
    std::atomic<std::shared_ptr<const Snapshot>> current;
    std::string config_path;  ///< empty: embedded config (demo), reload impossible
    std::atomic<bool> draining{false};
    std::atomic<int> open_connections{0};
    std::atomic<std::int64_t> inflight{0};  ///< API requests in flight (the high-water mark)
    CircuitBreakers breakers;
    unsigned threads = 1;
    metrics::Metrics* metrics = nullptr;
    ShadowRuntime* shadow = nullptr;
    asio::io_context* control = nullptr;    ///< runs reloads, off the data path
    std::function<ReloadOutcome()> reload;  ///< call only on `control`

    std::shared_ptr<const Snapshot> snapshot() const { return current.load(); }
};

struct SessionEntry {
    beast::tcp_stream* stream;
    bool idle;
};

/// One thread, its io_context, acceptors, upstream pools and live sessions.
/// Member order matters: `io` is destroyed after the pools and acceptors but before the
/// session registry, because destroying it destroys the sessions' coroutine frames.
struct Worker {
    explicit Worker(Shared& shared_state) : shared(shared_state) {}

    Shared& shared;
    std::list<SessionEntry> sessions;
    unsigned connection_limit = 1;
    unsigned connections = 0;
    Clock::time_point last_overload_log{};  ///< rate-limits the high-water mark's warning
    asio::steady_timer* accept_waiter = nullptr;
    std::thread thread;
    asio::io_context io{1};
    std::optional<tcp::acceptor> api_acceptor;
    std::optional<tcp::acceptor> admin_acceptor;
    upstream::Client upstream{io.get_executor(), shared.threads};

    /// Metric handles resolved once per worker and config, so recording takes no shared lock.
    std::map<std::string, std::shared_ptr<metrics::TargetMetrics>, std::less<>> metric_handles;

    /// Takes a new config's providers (upstream::Client::update) and forgets the metric
    /// handles (prices may have changed).
    void update_pools(const Snapshot& snapshot);
    std::shared_ptr<metrics::TargetMetrics> target_metrics(const std::string& route,
                                                           const config::TargetConfig& target,
                                                           const config::PriceConfig& price,
                                                           const config::PriceConfig& baseline);
    std::shared_ptr<metrics::TargetMetrics> unmatched_metrics();
    void begin_drain();
};

/// One accepted connection's place in the counts (the worker's share of max_connections, the
/// process's open connections the drain waits for), given back however its session ends (an
/// exception, or a frame destroyed unstarted at shutdown, included); the acceptor, when it is
/// waiting for a free place, is woken.
class ConnectionSlot {
  public:
    ConnectionSlot(Worker& worker, Listener listener);
    ConnectionSlot(ConnectionSlot&& other) noexcept
        : worker_(std::exchange(other.worker_, nullptr)), listener_(other.listener_) {}
    ConnectionSlot(const ConnectionSlot&) = delete;
    ConnectionSlot& operator=(const ConnectionSlot&) = delete;
    ConnectionSlot& operator=(ConnectionSlot&&) = delete;
    ~ConnectionSlot();

  private:
    Worker* worker_;
    Listener listener_;
};

/// Serves one connection until it closes; `slot` counts it meanwhile.
asio::awaitable<void> run_session(Worker* worker, tcp::socket socket, Listener listener,
                                  ConnectionSlot slot);

}  // namespace turnout::gateway
