#pragma once
/// Upstream client: connections to one provider (plain TCP or TLS with chain and host name
/// verification and SNI) and a keep-alive pool of them.
///
/// Includes Beast: include it only from the data-plane translation units (*_beast.cpp).
///
/// Thread safety: a pool belongs to one worker thread (one io_context) and is only touched
/// from it, so nothing here locks. Each worker has its own pools; a provider's
/// max_connections is split evenly across workers.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "config/config.hpp"
#include "protocol/hop_headers.hpp"
#include "upstream/asio_names.hpp"

namespace turnout::upstream {

using protocol::ConnectionTokens;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

/// What went wrong talking to an upstream, in the contract's `kind` label values.
enum class UpstreamFailure { connect, timeout, reset, tls, protocol };
std::string_view to_string(UpstreamFailure failure);

/// Classifies a low-level error seen while talking to an upstream.
UpstreamFailure classify_upstream_error(const error_code& ec);

/// One connection to a provider. Owns its read buffer, which must survive between the
/// response head and body reads.
class UpstreamConnection {
  public:
    using TlsStream = beast::ssl_stream<beast::tcp_stream>;

    explicit UpstreamConnection(beast::tcp_stream tcp);
    explicit UpstreamConnection(std::unique_ptr<TlsStream> tls);

    beast::tcp_stream& tcp();
    beast::flat_buffer& buffer() { return buffer_; }

    asio::awaitable<std::tuple<error_code, std::size_t>> write(
        http::request<http::string_body>& request);
    asio::awaitable<std::tuple<error_code, std::size_t>> read_header(
        http::response_parser<http::empty_body>& parser);
    asio::awaitable<std::tuple<error_code, std::size_t>> read_some(
        http::response_parser<http::buffer_body>& parser);
    asio::awaitable<std::tuple<error_code, std::size_t>> read_all(
        http::response_parser<http::string_body>& parser);

    /// Hard close: aborts pending operations (used when the client went away).
    void close();

    bool reused = false;  ///< served a request before: a failure may be a stale keep-alive

  private:
    std::variant<beast::tcp_stream, std::unique_ptr<TlsStream>> stream_;
    beast::flat_buffer buffer_;
};

using ConnectionPtr = std::unique_ptr<UpstreamConnection>;

/// Keep-alive pool for one provider on one worker thread.
class UpstreamPool {
  public:
    UpstreamPool(asio::any_io_executor executor, const config::ProviderConfig& provider,
                 std::shared_ptr<asio::ssl::context> tls_context, unsigned max_connections);

    /// An idle connection, or a new one, or waits for one to be released; fails with the
    /// connect/TLS error or a timeout once `deadline` passes.
    asio::awaitable<boost::system::result<ConnectionPtr>> acquire(Clock::time_point deadline);

    /// A fresh connection regardless of idle ones (retry after a stale keep-alive).
    asio::awaitable<boost::system::result<ConnectionPtr>> connect_new(Clock::time_point deadline);

    /// Returns a connection; `reusable` only when its response was read completely and
    /// both sides allow keep-alive. Wakes one waiter.
    void release(ConnectionPtr connection, bool reusable);

    const config::ProviderConfig& provider() const { return provider_; }
    std::uint64_t connections_opened() const { return opened_; }

  private:
    asio::awaitable<boost::system::result<ConnectionPtr>> open(Clock::time_point deadline);
    ConnectionPtr take_idle();
    /// Wakes the longest waiter. A waiter whose deadline passed meanwhile passes it on.
    void wake_one_waiter();

    /// An acquire() waiting for a release; lives in its coroutine frame.
    struct Waiter {
        asio::steady_timer timer;
        bool woken = false;  ///< picked by wake_one_waiter (the cancel may come too late)
    };

    asio::any_io_executor executor_;
    config::ProviderConfig provider_;
    std::shared_ptr<asio::ssl::context> tls_context_;
    unsigned max_connections_;
    unsigned open_count_ = 0;  ///< idle + in use + being opened
    std::uint64_t opened_ = 0;
    std::deque<ConnectionPtr> idle_;
    std::deque<Waiter*> waiters_;  ///< oldest first
};

/// The tokens of every Connection field of a message (which headers are hop-by-hop).
ConnectionTokens connection_tokens(const http::fields& fields);

/// The upstream request: the client's end-to-end headers (`client_headers`, null for calls
/// the gateway makes itself), the provider's credential instead of the client's, provider and
/// target headers on top. `credential` is the full header value ("" = none); a secret.
http::request<http::string_body> make_upstream_request(const http::fields* client_headers,
                                                       const config::ProviderConfig& provider,
                                                       const config::TargetConfig& target,
                                                       std::string_view suffix, std::string body,
                                                       std::string_view credential,
                                                       std::string_view request_id);

/// The response head of one exchange, with the connection to read the body from.
struct HeadExchange {
    error_code ec;
    ConnectionPtr connection;
    std::unique_ptr<http::response_parser<http::empty_body>> head;  // parsers do not move
};

/// Sends `request` and reads the response head by `head_deadline`. A reused keep-alive
/// connection that fails before any byte came back was closed by the upstream meanwhile: the
/// exchange is retried once on a fresh connection (as nginx and Envoy do).
asio::awaitable<HeadExchange> exchange_head(std::shared_ptr<UpstreamPool> pool,
                                            http::request<http::string_body>* request,
                                            Clock::time_point deadline,
                                            Clock::time_point head_deadline);

/// A whole non-streamed exchange (shadow copies, judge calls).
struct CallResult {
    error_code ec;
    unsigned status = 0;
    std::string body;
};
asio::awaitable<CallResult> call_upstream(std::shared_ptr<UpstreamPool> pool,
                                          http::request<http::string_body> request,
                                          Clock::time_point deadline);

/// Settings that an open connection depends on: a pool survives a reload unless they change.
bool same_connection_settings(const config::ProviderConfig& a, const config::ProviderConfig& b);

/// A TLS client context that verifies the peer chain against the system store (plus
/// `ca_file` when set). Throws on an unreadable ca_file (start-up only).
std::shared_ptr<asio::ssl::context> make_client_tls_context(const config::ProviderConfig& provider);

}  // namespace turnout::upstream
