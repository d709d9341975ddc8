// The gateway process: worker threads, listeners, signals, hot reload and the drain.
//
// Threading: one io_context per worker thread, each with its own SO_REUSEPORT acceptor, its
// own upstream pools and its own session registry. A connection lives on one thread from
// accept to close, so sessions need no strands and pools no locks; the kernel spreads new
// connections over the acceptors. The main thread runs the control loop: signals, reloads
// and the drain. Only the config snapshot, the drain flag and the connection count are
// shared between threads.

#include "gateway/server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

#include "base/logging.hpp"
#include "config/loader.hpp"
#include "gateway/worker.hpp"

namespace turnout::gateway {

using base::flush_logs;
using base::gateway_log;
using base::init_logging;
using base::log_event;
namespace {

using config::Config;
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

std::string render_models(const routing::RouteTable& routes) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    writer.StartObject();
    writer.Key("object");
    writer.String("list");
    writer.Key("data");
    writer.StartArray();
    for (const std::string& name : routes.model_names()) {
        writer.StartObject();
        writer.Key("id");
        writer.String(name);
        writer.Key("object");
        writer.String("model");
        writer.Key("created");
        writer.Int(0);
        writer.Key("owned_by");
        writer.String("turnout");
        writer.EndObject();
    }
    writer.EndArray();
    writer.EndObject();
    return {out.GetString(), out.GetSize()};
}

}  // namespace

std::shared_ptr<const Snapshot> Snapshot::build(std::shared_ptr<const config::Config> config) {
    auto snapshot = std::make_shared<Snapshot>();
    snapshot->config = config;
    snapshot->routes = std::make_shared<const routing::RouteTable>(config);
    snapshot->keys = std::make_shared<routing::KeyRing>(*config);
    snapshot->providers = upstream::Providers::build(config);
    if (!config->admin.token_env.empty()) {
        snapshot->admin_token = upstream::required_env(config->admin.token_env, "admin.token_env");
    }
    snapshot->models_json = render_models(*snapshot->routes);
    return snapshot;
}

void Worker::update_pools(const Snapshot& snapshot) {
    upstream.update(snapshot.providers);
    metric_handles.clear();
}

std::shared_ptr<metrics::TargetMetrics> Worker::target_metrics(
    const std::string& route, const config::TargetConfig& target, const config::PriceConfig& price,
    const config::PriceConfig& baseline) {
    if (shared.metrics == nullptr) return nullptr;
    std::string key = route;
    key.append(1, '\0').append(target.provider).append(1, '\0').append(target.model);
    auto& handle = metric_handles[key];
    if (!handle) {
        handle = shared.metrics->target(route, target.provider, target.model, price, baseline);
    }
    return handle;
}

std::shared_ptr<metrics::TargetMetrics> Worker::unmatched_metrics() {
    if (shared.metrics == nullptr) return nullptr;
    auto& handle = metric_handles[std::string(metrics::Metrics::kNone)];
    if (!handle) handle = shared.metrics->unmatched();
    return handle;
}

void Worker::begin_drain() {
    error_code ignored;
    if (api_acceptor) api_acceptor->close(ignored);
    if (admin_acceptor) admin_acceptor->close(ignored);
    // The accept loop, waiting for a free connection slot, sees its acceptor closed and ends;
    // no session's end may wake it afterwards (its timer dies with its frame).
    if (accept_waiter != nullptr) accept_waiter->cancel();
    accept_waiter = nullptr;
    for (auto& entry : sessions) {
        if (entry.idle) entry.stream->socket().close(ignored);
    }
}

namespace {

/// Pause after an accept failed for want of descriptors or memory. Retrying at once spins:
/// the connection stays queued and the next accept fails the same way (nginx waits
/// `accept_mutex_delay`, 500 ms). Short, so a probe queued meanwhile barely notices.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

bool is_out_of_resources(const error_code& ec) {
    namespace errc = boost::system::errc;
    return ec == errc::too_many_files_open || ec == errc::too_many_files_open_in_system ||
           ec == errc::no_buffer_space || ec == errc::not_enough_memory;
}

/// One descriptor held back (on /dev/null) for the admin listener: when the process runs out
/// of descriptors, it is given up to accept a probe, and taken back when that connection
/// closes. Only the first worker's thread (the admin listener's) touches it; process lifetime.
class AdminReserve {
  public:
    void take() {
        if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    /// True when a descriptor was held and is now free.
    bool give_up() {
        if (fd_ < 0) return false;
        ::close(fd_);
        fd_ = -1;
        return true;
    }

  private:
    int fd_ = -1;
};

AdminReserve admin_reserve;

/// An admin connection accepted on the reserve descriptor; the reserve is taken back after it.
asio::awaitable<void> run_reserve_session(Worker* worker, tcp::socket socket, ConnectionSlot slot) {
    co_await run_session(worker, std::move(socket), Listener::admin, std::move(slot));
    admin_reserve.take();
}

/// Accept failures of one listener, logged once per episode (the first failure, then a
/// summary when accepting works again) rather than once per retry.
struct AcceptFailures {
    Listener listener;
    std::uint64_t count = 0;

    void failed(const error_code& ec) {
        if (count++ > 0) return;
        log_event(gateway_log(), spdlog::level::warn, "accept paused: out of file descriptors",
                  {{"listener", listener == Listener::api ? "api" : "admin"},
                   {"error", ec.message()},
                   {"retry_ms", static_cast<std::int64_t>(kAcceptBackoff.count())}});
    }
    void accepted() {
        if (count == 0) return;
        log_event(gateway_log(), spdlog::level::info, "accepting again",
                  {{"listener", listener == Listener::api ? "api" : "admin"},
                   {"failed_accepts", static_cast<std::int64_t>(count)}});
        count = 0;
    }
};

/// Out of descriptors on the admin listener: accepts one waiting probe on the reserve
/// descriptor. Linux fails accept with EMFILE before it looks at the queue, so the reserve is
/// given up only when a connection is waiting, and the accept does not block: the reserve is
/// never left free for the API listeners to take. False when there was no reserve, no
/// connection, or the accept failed anyway (another thread took the descriptor first).
bool accept_on_reserve(Worker* worker, tcp::acceptor& acceptor) {
    pollfd waiting{acceptor.native_handle(), POLLIN, 0};
    if (::poll(&waiting, 1, 0) != 1 || (waiting.revents & POLLIN) == 0) return false;
    if (!admin_reserve.give_up()) return false;
    error_code ec;
    acceptor.non_blocking(true, ec);  // for this synchronous accept; async ones never block
    tcp::socket socket(worker->io);
    if (!ec) acceptor.accept(socket, ec);
    error_code ignored;
    acceptor.non_blocking(false, ignored);
    if (ec) {
        admin_reserve.take();
        return false;
    }
    asio::co_spawn(
        worker->io,
        run_reserve_session(worker, std::move(socket), ConnectionSlot(*worker, Listener::admin)),
        asio::detached);
    return true;
}

asio::awaitable<void> accept_loop(Worker* worker, tcp::acceptor* acceptor, Listener listener) {
    AcceptFailures failures{listener};
    for (;;) {
        // Admin connections are outside max_connections: clients must not starve the probes.
        if (listener == Listener::api && worker->connections >= worker->connection_limit) {
            // Over max_connections: leave new connections in the kernel's accept queue.
            asio::steady_timer wait(worker->io, std::chrono::seconds(1));
            worker->accept_waiter = &wait;
            co_await wait.async_wait(kToken);
            worker->accept_waiter = nullptr;
            if (!acceptor->is_open()) co_return;
            continue;
        }
        auto [ec, socket] = co_await acceptor->async_accept(kToken);
        if (ec) {
            if (!acceptor->is_open()) co_return;
            if (!is_out_of_resources(ec)) continue;  // e.g. ECONNABORTED: that client left
            failures.failed(ec);
            if (listener == Listener::admin && accept_on_reserve(worker, *acceptor)) continue;
            // Keep serving the connections we have; retry when some may have closed.
            asio::steady_timer wait(worker->io, kAcceptBackoff);
            co_await wait.async_wait(kToken);
            if (!acceptor->is_open()) co_return;
            continue;
        }
        failures.accepted();
        asio::co_spawn(
            worker->io,
            run_session(worker, std::move(socket), listener, ConnectionSlot(*worker, listener)),
            asio::detached);
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (the default soft limit, 1024, is far below
/// what a gateway needs) and returns the soft limit in force.
rlim_t raise_fd_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return RLIM_INFINITY;
    const rlim_t before = limit.rlim_cur;
    // An unlimited hard limit cannot be the soft one (the kernel caps it at fs.nr_open).
    const rlim_t target = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
    if (before != RLIM_INFINITY && before < target) {
        limit.rlim_cur = target;
        if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
            log_event(gateway_log(), spdlog::level::info, "file descriptor limit raised",
                      {{"from", static_cast<std::int64_t>(before)},
                       {"to", static_cast<std::int64_t>(target)}});
        }
    }
    ::getrlimit(RLIMIT_NOFILE, &limit);
    return limit.rlim_cur;
}

/// The client connections the descriptor limit leaves room for (docs/architecture.md, "File
/// descriptors"): the limit minus a reserve of 64 (listeners, epoll, timers, log and state
/// files, admin connections) plus two per upstream connection slot (the live pools and the
/// shadow runtime's each open up to a provider's max_connections), but never less than a
/// quarter of the limit. `limits.max_connections` above that is capped, with a warning.
unsigned effective_max_connections(const config::Config& config, rlim_t fd_limit) {
    const unsigned configured = config.limits.max_connections;
    if (fd_limit == RLIM_INFINITY) return configured;
    std::uint64_t reserve = 64;
    for (const auto& provider : config.providers) reserve += 2ull * provider.max_connections;
    const std::uint64_t limit = fd_limit;
    const std::uint64_t room = std::max(limit > reserve ? limit - reserve : 0, limit / 4);
    if (configured <= room) return configured;
    log_event(gateway_log(), spdlog::level::warn,
              "limits.max_connections capped by the file descriptor limit (raise `ulimit -n` / "
              "LimitNOFILE, or lower max_connections)",
              {{"max_connections", static_cast<std::int64_t>(configured)},
               {"effective", static_cast<std::int64_t>(room)},
               {"fd_limit", static_cast<std::int64_t>(limit)},
               {"reserve", static_cast<std::int64_t>(reserve)}});
    return static_cast<unsigned>(std::max<std::uint64_t>(room, 1));
}

tcp::endpoint parse_endpoint(const std::string& host_port) {
    const auto colon = host_port.rfind(':');
    std::string host = host_port.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    const auto port = static_cast<unsigned short>(std::stoi(host_port.substr(colon + 1)));
    return {asio::ip::make_address(host), port};
}

tcp::acceptor open_acceptor(asio::io_context& io, tcp::endpoint endpoint) {
    tcp::acceptor acceptor(io);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    acceptor.set_option(reuse_port(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    return acceptor;
}

void log_listening(std::string_view kind, const tcp::endpoint& endpoint) {
    const std::string host = endpoint.address().to_string();
    const std::string address = endpoint.address().is_v6()
                                    ? fmt::format("[{}]:{}", host, endpoint.port())
                                    : fmt::format("{}:{}", host, endpoint.port());
    log_event(gateway_log(), spdlog::level::info, "listening",
              {{"kind", kind}, {"listen", address}});
}

void start_listeners(std::vector<std::unique_ptr<Worker>>& workers, const config::Config& config) {
    tcp::endpoint api = parse_endpoint(config.listen);
    for (auto& worker : workers) {
        worker->api_acceptor.emplace(open_acceptor(worker->io, api));
        api = worker->api_acceptor->local_endpoint();  // port 0: the others share the real one
        asio::co_spawn(worker->io, accept_loop(worker.get(), &*worker->api_acceptor, Listener::api),
                       asio::detached);
    }
    log_listening("api", api);
    Worker& first = *workers.front();
    first.admin_acceptor.emplace(open_acceptor(first.io, parse_endpoint(config.admin.listen)));
    asio::co_spawn(first.io, accept_loop(&first, &*first.admin_acceptor, Listener::admin),
                   asio::detached);
    log_listening("admin", first.admin_acceptor->local_endpoint());
}

constexpr std::string_view kEmbeddedConfigReload =
    "the configuration is embedded (demo): nothing to reload";

/// Re-reads the config file; a bad one is rejected with the same errors as `turnout check`
/// and the running config stays. Runs on the control thread only.
ReloadOutcome reload_config(Shared& shared, std::vector<std::unique_ptr<Worker>>& workers) {
    ReloadOutcome outcome;
    if (shared.config_path.empty()) {
        outcome.errors.emplace_back(kEmbeddedConfigReload);
    } else {
        auto loaded = config::load_config_file(shared.config_path, config::EnvPolicy::require);
        for (auto& error : loaded.errors) outcome.errors.push_back(std::move(error.text));
        if (outcome.errors.empty()) {
            try {
                auto snapshot = Snapshot::build(loaded.config);
                const auto& old_config = *shared.snapshot()->config;
                if (old_config.listen != loaded.config->listen ||
                    old_config.admin.listen != loaded.config->admin.listen) {
                    log_event(gateway_log(), spdlog::level::warn,
                              "listen addresses change only on restart", {});
                }
                shared.current.store(snapshot);
                if (shared.shadow != nullptr) shared.shadow->configure(snapshot->providers);
                for (auto& worker : workers) {
                    asio::post(worker->io,
                               [w = worker.get(), snapshot] { w->update_pools(*snapshot); });
                }
                outcome.ok = true;
            } catch (const std::exception& e) {
                outcome.errors.push_back(shared.config_path + ":1:1: " + e.what());
            }
        }
    }
    if (shared.metrics != nullptr) shared.metrics->config_reload(outcome.ok);
    if (outcome.ok) {
        log_event(gateway_log(), spdlog::level::info, "config reloaded",
                  {{"file", shared.config_path}});
    }
    for (const auto& error : outcome.errors) {
        log_event(gateway_log(), spdlog::level::err, "config reload rejected", {{"error", error}});
    }
    return outcome;
}

/// The control loop: SIGHUP reloads; SIGTERM/SIGINT end it. The signal set exists before
/// the listeners open, so no signal slips in between and kills the process undrained.
void run_control_loop(asio::io_context& control, asio::signal_set& signals, Shared& shared) {
    auto work = asio::make_work_guard(control);
    int stop_signal = 0;
    std::function<void(const error_code&, int)> on_signal;
    on_signal = [&](const error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
            shared.reload();
            signals.async_wait(on_signal);
            return;
        }
        stop_signal = signal;
        work.reset();
        control.stop();
    };
    signals.async_wait(on_signal);
    control.run();
    log_event(gateway_log(), spdlog::level::info, "draining",
              {{"signal", static_cast<std::int64_t>(stop_signal)},
               {"open_connections", static_cast<std::int64_t>(shared.open_connections.load())}});
}

/// Stops accepting, closes idle connections, and waits until every connection closed or
/// the drain deadline passed.
void drain(std::vector<std::unique_ptr<Worker>>& workers, Shared& shared) {
    shared.draining = true;
    for (auto& worker : workers) {
        asio::post(worker->io, [w = worker.get()] { w->begin_drain(); });
    }
    const auto deadline = Clock::now() + shared.snapshot()->config->limits.drain_timeout;
    while (shared.open_connections.load() > 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    log_event(gateway_log(), spdlog::level::info, "stopped",
              {{"open_connections", static_cast<std::int64_t>(shared.open_connections.load())}});
}

}  // namespace

int serve(std::shared_ptr<const config::Config> config, const ServeOptions& options) {
    std::signal(SIGPIPE, SIG_IGN);
    asio::io_context control;
    asio::signal_set signals(control, SIGTERM, SIGINT, SIGHUP);
    // Worker threads keep these signals blocked; the control loop takes them.
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGHUP);

    metrics::Metrics metrics;
    Shared shared;
    shared.current.store(Snapshot::build(config));
    shared.config_path = options.config_path;
    shared.threads =
        options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    shared.metrics = &metrics;
    shared.control = &control;
    if (!config->state.url.empty()) {
        // Shared state for several replicas is not built yet: say so rather than pretend.
        log_event(gateway_log(), spdlog::level::warn,
                  "state.url is not supported yet: route states stay on local disk",
                  {{"path", config->state.path}});
    }
    for (const auto& provider : config->providers) {
        if (!provider.tls_verify) {
            log_event(gateway_log(), spdlog::level::warn, "tls verification disabled",
                      {{"provider", provider.name}});
        }
    }

    const unsigned max_connections = effective_max_connections(*config, raise_fd_limit());
    admin_reserve.take();
    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned i = 0; i < shared.threads; ++i) {
        workers.push_back(std::make_unique<Worker>(shared));
        workers.back()->connection_limit = std::max(1u, max_connections / shared.threads);
        workers.back()->update_pools(*shared.snapshot());
    }
    shared.reload = [&shared, &workers] { return reload_config(shared, workers); };
    auto shadow = std::make_unique<ShadowRuntime>(config->state.path, &metrics);
    shadow->configure(shared.snapshot()->providers);
    shared.shadow = shadow.get();
    shadow->start();
    start_listeners(workers, *config);
    flush_logs();  // scripts and tests wait for the listening lines

    pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
    for (auto& worker : workers) {
        worker->thread = std::thread([w = worker.get()] {
            auto guard = asio::make_work_guard(w->io);
            w->io.run();
        });
    }
    pthread_sigmask(SIG_UNBLOCK, &blocked, nullptr);
    run_control_loop(control, signals, shared);
    drain(workers, shared);
    control.restart();
    control.poll();  // reloads asked for during the drain finish before the workers go
    for (auto& worker : workers) worker->io.stop();
    for (auto& worker : workers) worker->thread.join();
    // The shadow goes before the workers: an admin call still waiting on the shadow thread
    // is a coroutine frame of a worker's session, destroyed with the shadow's io_context.
    shadow->stop();  // background pairs in flight are dropped; controller states are saved
    shared.shadow = nullptr;
    shadow.reset();
    workers.clear();
    flush_logs();
    return 0;
}

}  // namespace turnout::gateway
