#pragma once
/// The gateway's run-time state shared by server_beast.cpp (process: workers, listeners,
/// signals, reload, drain) and session_beast.cpp (connections and the proxy).
///
/// Includes Beast: include it only from those two translation units.
///
/// Thread safety: `Snapshot` is immutable and swapped atomically on reload; a request reads
/// the snapshot once at its start and finishes on it. A `Worker` and everything it owns is
/// touched only from its own thread.

#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/circuit_breaker.hpp"
#include "gateway/shadow_runtime.hpp"
#include "gateway/upstream.hpp"
#include "metrics/metrics.hpp"
#include "routing/config.hpp"
#include "routing/keys.hpp"
#include "routing/route_table.hpp"

namespace turnout::gateway {

using tcp = asio::ip::tcp;

/// Everything derived from one validated config, built off the data path.
struct Snapshot {
    std::shared_ptr<const routing::Config> config;
    std::shared_ptr<const routing::RouteTable> routes;
    std::shared_ptr<const routing::KeyRing> keys;
    /// provider name -> credential header value. Secrets: never logged.
    std::map<std::string, std::string, std::less<>> provider_auth;
    std::map<std::string, std::shared_ptr<asio::ssl::context>, std::less<>> tls_contexts;
    std::string admin_token;  ///< empty = /admin/* open. Secret.
    std::string models_json;

    /// Throws std::runtime_error when a secret env var is unset or a ca_file unreadable.
    static std::shared_ptr<const Snapshot> build(std::shared_ptr<const routing::Config> config);
};

struct ReloadOutcome {
    bool ok = false;
    std::vector<std::string> errors;  ///< `FILE:LINE:COL: message`
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
    asio::io_context* control = nullptr;     ///< runs reloads, off the data path
    std::function<ReloadOutcome()> reload;  ///< call only on `control`

    std::shared_ptr<const Snapshot> snapshot() const { return current.load(); }
};

struct SessionEntry {
    beast::tcp_stream* stream;
    bool idle;
};

enum class Listener { api, admin };

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
    /// Shared so a request in flight keeps its pool alive across a reload.
    std::map<std::string, std::shared_ptr<UpstreamPool>, std::less<>> pools;

    /// Metric handles resolved once per worker and config, so recording takes no shared lock.
    std::map<std::string, std::shared_ptr<metrics::TargetMetrics>, std::less<>> metric_handles;

    /// Keeps the pools of providers whose connection settings did not change; forgets the
    /// metric handles (prices may have changed).
    void update_pools(const Snapshot& snapshot);
    /// The pool of `provider`, created on the spot when a reload is still on its way to this
    /// worker (a request on a newer snapshot) or removed it (a fallback on an older one).
    std::shared_ptr<UpstreamPool> pool_for(const Snapshot& snapshot,
                                           const routing::ProviderConfig& provider);
    std::shared_ptr<metrics::TargetMetrics> target_metrics(const std::string& route,
                                                           const routing::TargetConfig& target,
                                                           const routing::PriceConfig& price,
                                                           const routing::PriceConfig& baseline);
    std::shared_ptr<metrics::TargetMetrics> unmatched_metrics();
    void begin_drain();
};

asio::awaitable<void> run_session(Worker* worker, tcp::socket socket, Listener listener);

}  // namespace turnout::gateway
