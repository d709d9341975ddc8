// `turnout simulate`: the process. Parses the command line, binds the listeners and runs the
// threads until SIGINT or SIGTERM.
//
// Threading: one io_context per thread, each with its own SO_REUSEPORT acceptor on the same
// port. The kernel spreads connections over the acceptors and every connection then lives on
// one single-threaded io_context: no strands, no scheduler lock (concurrency hint 1), no
// cross-thread wake-ups. A benchmark opens many connections, so the hash spreads them evenly;
// one io_context run by N threads would contend on its scheduler mutex instead. The only
// state shared between threads is the immutable settings, atomic counters and the test-only
// last-request record behind its mutex (sim/state.hpp).

#include "sim/simulator.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <csignal>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sim/anthropic_answers.hpp"
#include "sim/options.hpp"
#include "sim/session.hpp"
#include "sim/state.hpp"
#include "sim/values.hpp"

namespace turnout::sim {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::literals;

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
constexpr auto kAcceptBackoff = 50ms;

std::shared_ptr<SimState> make_state(Settings settings) {
    auto state = std::make_shared<SimState>();
    state->degrade_rate.store(settings.degrade_rate);
    state->settings = std::move(settings);
    split_words(kToolPreamble, state->tool_preamble);
    return state;
}

// Null without --tls-cert.
std::shared_ptr<ssl::context> make_tls(const Options& options) {
    if (options.tls_cert.empty()) {
        return nullptr;
    }
    auto tls = std::make_shared<ssl::context>(ssl::context::tls_server);
    error_code ec;
    tls->use_certificate_chain_file(options.tls_cert, ec);
    if (ec) {
        throw std::runtime_error("--tls-cert " + options.tls_cert + ": " + ec.message());
    }
    tls->use_private_key_file(options.tls_key, ssl::context::pem, ec);
    if (ec) {
        throw std::runtime_error("--tls-key " + options.tls_key + ": " + ec.message());
    }
    return tls;
}

asio::awaitable<void> accept_loop(tcp::acceptor acceptor, std::shared_ptr<SimState> state,
                                  std::shared_ptr<ssl::context> tls) {
    asio::steady_timer backoff(acceptor.get_executor());
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(kToken);
        if (ec == asio::error::operation_aborted) {
            co_return;
        }
        if (ec) {
            // Out of file descriptors and the like: retry later instead of spinning.
            backoff.expires_after(kAcceptBackoff);
            co_await backoff.async_wait(kToken);
            continue;
        }
        bump(state->stats.connections_accepted);
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        spawn_session(std::move(socket), state, tls);
    }
}

// Asio has no public name for SO_REUSEPORT; its boolean option template is the usual way.
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// With SO_REUSEPORT a second simulator started on the same fixed port would silently share it
// with the first. A plain bind fails with "address in use" instead; port 0 never collides.
void check_port_free(asio::io_context& context, const tcp::endpoint& endpoint) {
    if (endpoint.port() == 0) {
        return;
    }
    tcp::acceptor probe(context);
    probe.open(endpoint.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    probe.bind(endpoint);
}

tcp::acceptor open_acceptor(asio::io_context& context, const tcp::endpoint& endpoint) {
    tcp::acceptor acceptor(context);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.set_option(ReusePort(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    return acceptor;
}

std::string endpoint_text(const tcp::endpoint& endpoint) {
    const std::string address = endpoint.address().to_string();
    const std::string port = std::to_string(endpoint.port());
    return endpoint.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

/// Binds every acceptor (the first one picks the port when it is 0) and starts accepting;
/// returns the bound endpoint.
tcp::endpoint start_listening(std::vector<std::unique_ptr<asio::io_context>>& contexts,
                              const tcp::endpoint& listen, const std::shared_ptr<SimState>& state,
                              const std::shared_ptr<ssl::context>& tls) {
    tcp::endpoint bound = listen;
    try {
        check_port_free(*contexts.front(), bound);
        for (auto& context : contexts) {
            tcp::acceptor acceptor = open_acceptor(*context, bound);
            bound = acceptor.local_endpoint();
            asio::co_spawn(*context, accept_loop(std::move(acceptor), state, tls), asio::detached);
        }
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot listen on " + endpoint_text(bound) + ": " +
                                 e.code().message());
    }
    return bound;
}

}  // namespace

int simulate_main(int argc, char** argv) {
    std::shared_ptr<SimState> state;
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    tcp::endpoint bound;
    try {
        std::optional<Options> options = parse_command_line(argc, argv);
        if (!options) {
            std::cout << usage();
            return 0;
        }
        std::shared_ptr<ssl::context> tls = make_tls(*options);
        state = make_state(std::move(options->settings));
        for (unsigned i = 0; i < options->threads; ++i) {
            contexts.push_back(std::make_unique<asio::io_context>(1));
        }
        bound = start_listening(contexts, options->listen, state, tls);
    } catch (const std::invalid_argument& e) {
        std::cerr << "turnout simulate: " << e.what() << "\n" << usage();
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "turnout simulate: " << e.what() << "\n";
        return 2;
    }

    asio::signal_set signals(*contexts.front(), SIGINT, SIGTERM);
    signals.async_wait([&contexts](const error_code&, int) {
        for (auto& context : contexts) {
            context->stop();
        }
    });
    std::cout << R"({"msg":"listening","kind":"simulator","api":")"
              << (state->settings.kind == Kind::anthropic ? "anthropic" : "openai")
              << R"(","role":")" << (state->settings.role == Role::judge ? "judge" : "answer")
              << R"(","listen":")" << endpoint_text(bound) << "\"}\n"
              << std::flush;

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts.size(); ++i) {
        threads.emplace_back([context = contexts[i].get()] { context->run(); });
    }
    contexts.front()->run();
    for (auto& thread : threads) {
        thread.join();
    }
    return 0;
}

}  // namespace turnout::sim
