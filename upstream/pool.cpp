#include "upstream/pool.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/ssl.hpp>

#include "base/logging.hpp"
#include "protocol/hop_headers.hpp"

namespace turnout::upstream {
namespace {

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

bool is_ip_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

/// True when an idle keep-alive connection was closed by the peer (or, for plain HTTP,
/// has unexpected bytes waiting): using it would fail or mis-frame the next response.
bool idle_connection_is_stale(UpstreamConnection& connection, bool tls) {
    auto& socket = connection.tcp().socket();
    if (!socket.is_open()) return true;
    char byte = 0;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    if (n > 0) return !tls;  // TLS 1.3 may legitimately send session tickets late
    return errno != EAGAIN && errno != EWOULDBLOCK;
}

/// One lookup whose answer may arrive after its waiter gave up: getaddrinfo runs on Asio's
/// resolver thread and cannot be interrupted, so the waiter stops waiting at the deadline and
/// the late answer is dropped. Kept alive by the lookup's completion handler.
struct PendingResolve {
    explicit PendingResolve(const asio::any_io_executor& executor)
        : resolver(executor), done(executor) {}
    asio::ip::tcp::resolver resolver;
    asio::steady_timer done;  ///< expires at the deadline; cancelled by the answer
    error_code ec;
    asio::ip::tcp::resolver::results_type endpoints;
    bool finished = false;
};

/// Resolves `host` by `deadline` (the connect deadline): a hung DNS server costs a timeout,
/// not the whole request deadline.
asio::awaitable<boost::system::result<asio::ip::tcp::resolver::results_type>> resolve_until(
    asio::any_io_executor executor, std::string host, std::uint16_t port,
    Clock::time_point deadline) {
    auto pending = std::make_shared<PendingResolve>(executor);
    pending->done.expires_at(deadline);
    pending->resolver.async_resolve(
        host, std::to_string(port),
        [pending](const error_code& ec, asio::ip::tcp::resolver::results_type endpoints) {
            pending->ec = ec;
            pending->endpoints = std::move(endpoints);
            pending->finished = true;
            pending->done.cancel();
        });
    co_await pending->done.async_wait(kToken);
    if (!pending->finished) co_return error_code(beast::error::timeout);
    if (pending->ec) co_return pending->ec;
    co_return std::move(pending->endpoints);
}

}  // namespace

std::string_view to_string(UpstreamFailure failure) {
    switch (failure) {
        case UpstreamFailure::connect:
            return "connect";
        case UpstreamFailure::timeout:
            return "timeout";
        case UpstreamFailure::reset:
            return "reset";
        case UpstreamFailure::tls:
            return "tls";
        case UpstreamFailure::protocol:
            return "protocol";
    }
    return "protocol";
}

UpstreamFailure classify_upstream_error(const error_code& ec) {
    if (ec == beast::error::timeout || ec == asio::error::timed_out) {
        return UpstreamFailure::timeout;
    }
    if (ec.category() == asio::error::get_ssl_category() ||
        ec.category() == asio::ssl::error::get_stream_category()) {
        if (ec == asio::ssl::error::stream_truncated) return UpstreamFailure::reset;
        return UpstreamFailure::tls;
    }
    if (ec == asio::error::connection_refused || ec == asio::error::host_unreachable ||
        ec == asio::error::network_unreachable || ec == asio::error::host_not_found ||
        ec == asio::error::host_not_found_try_again || ec == asio::error::no_data) {
        return UpstreamFailure::connect;
    }
    if (ec == asio::error::connection_reset || ec == asio::error::eof ||
        ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::broken_pipe || ec == asio::error::operation_aborted) {
        return UpstreamFailure::reset;
    }
    return UpstreamFailure::protocol;
}

UpstreamConnection::UpstreamConnection(beast::tcp_stream tcp) : stream_(std::move(tcp)) {}

UpstreamConnection::UpstreamConnection(std::unique_ptr<TlsStream> tls) : stream_(std::move(tls)) {}

beast::tcp_stream& UpstreamConnection::tcp() {
    if (auto* plain = std::get_if<beast::tcp_stream>(&stream_)) return *plain;
    return std::get<std::unique_ptr<TlsStream>>(stream_)->next_layer();
}

asio::awaitable<std::tuple<error_code, std::size_t>> UpstreamConnection::write(
    http::request<http::string_body>& request) {
    if (auto* plain = std::get_if<beast::tcp_stream>(&stream_)) {
        co_return co_await http::async_write(*plain, request, kToken);
    }
    co_return co_await http::async_write(*std::get<1>(stream_), request, kToken);
}

asio::awaitable<std::tuple<error_code, std::size_t>> UpstreamConnection::read_header(
    http::response_parser<http::empty_body>& parser) {
    if (auto* plain = std::get_if<beast::tcp_stream>(&stream_)) {
        co_return co_await http::async_read_header(*plain, buffer_, parser, kToken);
    }
    co_return co_await http::async_read_header(*std::get<1>(stream_), buffer_, parser, kToken);
}

asio::awaitable<std::tuple<error_code, std::size_t>> UpstreamConnection::read_some(
    http::response_parser<http::buffer_body>& parser) {
    if (auto* plain = std::get_if<beast::tcp_stream>(&stream_)) {
        co_return co_await http::async_read_some(*plain, buffer_, parser, kToken);
    }
    co_return co_await http::async_read_some(*std::get<1>(stream_), buffer_, parser, kToken);
}

asio::awaitable<std::tuple<error_code, std::size_t>> UpstreamConnection::read_all(
    http::response_parser<http::string_body>& parser) {
    if (auto* plain = std::get_if<beast::tcp_stream>(&stream_)) {
        co_return co_await http::async_read(*plain, buffer_, parser, kToken);
    }
    co_return co_await http::async_read(*std::get<1>(stream_), buffer_, parser, kToken);
}

void UpstreamConnection::close() {
    error_code ignored;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp().socket().close(ignored);
}

UpstreamPool::UpstreamPool(asio::any_io_executor executor, const config::ProviderConfig& provider,
                           std::shared_ptr<asio::ssl::context> tls_context,
                           unsigned max_connections)
    : executor_(std::move(executor)),
      provider_(provider),
      tls_context_(std::move(tls_context)),
      max_connections_(std::max(1u, max_connections)) {}

ConnectionPtr UpstreamPool::take_idle() {
    while (!idle_.empty()) {
        ConnectionPtr connection = std::move(idle_.back());
        idle_.pop_back();
        if (!idle_connection_is_stale(*connection, provider_.address.tls)) return connection;
        --open_count_;
    }
    return nullptr;
}

asio::awaitable<boost::system::result<ConnectionPtr>> UpstreamPool::acquire(
    Clock::time_point deadline) {
    for (;;) {
        if (ConnectionPtr idle = take_idle()) co_return idle;
        if (open_count_ < max_connections_) co_return co_await connect_new(deadline);
        // At the limit: wait for a release (the timer is cancelled) or the deadline.
        Waiter waiter{asio::steady_timer(executor_, deadline)};
        waiters_.push_back(&waiter);
        co_await waiter.timer.async_wait(kToken);
        std::erase(waiters_, &waiter);
        if (Clock::now() >= deadline) {
            // The timer may have fired in the same turn as a release that picked this waiter:
            // the cancel came too late to matter, so the wake-up goes on to the next waiter
            // instead of being lost with this one (it would time out for nothing).
            if (waiter.woken) wake_one_waiter();
            co_return error_code(beast::error::timeout);
        }
    }
}

asio::awaitable<boost::system::result<ConnectionPtr>> UpstreamPool::connect_new(
    Clock::time_point deadline) {
    ++open_count_;
    auto result = co_await open(deadline);
    if (!result) {
        --open_count_;
        wake_one_waiter();
    }
    co_return result;
}

asio::awaitable<boost::system::result<ConnectionPtr>> UpstreamPool::open(
    Clock::time_point deadline) {
    const auto& address = provider_.address;
    const auto connect_deadline = std::min(deadline, Clock::now() + provider_.connect_timeout);

    auto resolved = co_await resolve_until(executor_, address.host, address.port, connect_deadline);
    if (!resolved) co_return resolved.error();
    const auto& endpoints = *resolved;

    beast::tcp_stream tcp(executor_);
    tcp.expires_at(connect_deadline);
    auto [connect_ec, endpoint] = co_await tcp.async_connect(endpoints, kToken);
    if (connect_ec) co_return connect_ec;
    tcp.socket().set_option(asio::ip::tcp::no_delay(true));
    ++opened_;

    if (!address.tls) {
        tcp.expires_never();
        co_return std::make_unique<UpstreamConnection>(std::move(tcp));
    }

    auto tls = std::make_unique<UpstreamConnection::TlsStream>(std::move(tcp), *tls_context_);
    SSL* ssl = tls->native_handle();
    if (!is_ip_literal(address.host)) {
        // SNI, and the name the certificate must carry.
        // RFC 9525/6125: names only from the subjectAltName (no fallback to the subject CN of
        // a certificate without SANs), and a wildcard only as a whole left-most label
        // (`*.example.com`, never `f*.example.com`).
        SSL_set_tlsext_host_name(ssl, address.host.c_str());
        SSL_set_hostflags(
            ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
        SSL_set1_host(ssl, address.host.c_str());
    } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), address.host.c_str());
    }
    tls->next_layer().expires_at(connect_deadline);
    auto [handshake_ec] = co_await tls->async_handshake(asio::ssl::stream_base::client, kToken);
    if (handshake_ec) {
        const long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            base::log_event(base::gateway_log(), spdlog::level::warn,
                            "upstream tls verification failed",
                            {{"provider", provider_.name},
                             {"host", address.host},
                             {"reason", X509_verify_cert_error_string(verify)}});
        }
        co_return handshake_ec;
    }
    tls->next_layer().expires_never();
    co_return std::make_unique<UpstreamConnection>(std::move(tls));
}

void UpstreamPool::release(ConnectionPtr connection, bool reusable) {
    if (connection && reusable) {
        connection->reused = true;
        idle_.push_back(std::move(connection));
    } else {
        --open_count_;
    }
    wake_one_waiter();
}

void UpstreamPool::wake_one_waiter() {
    if (waiters_.empty()) return;
    Waiter* waiter = waiters_.front();
    waiters_.pop_front();
    waiter->woken = true;
    waiter->timer.cancel();
}

ConnectionTokens connection_tokens(const http::fields& fields) {
    ConnectionTokens tokens;
    const auto [begin, end] = fields.equal_range(http::field::connection);
    for (auto it = begin; it != end; ++it) tokens.add_connection_value(it->value());
    return tokens;
}

http::request<http::string_body> make_upstream_request(const http::fields* client_headers,
                                                       const config::ProviderConfig& provider,
                                                       const config::TargetConfig& target,
                                                       std::string_view suffix, std::string body,
                                                       std::string_view credential,
                                                       std::string_view request_id) {
    const bool anthropic = provider.kind == config::ProviderKind::anthropic;
    const std::string path = provider.address.base_path +
                             (anthropic ? std::string("/v1/messages") : std::string(suffix));
    http::request<http::string_body> upstream{http::verb::post, path, 11};
    if (client_headers != nullptr) {
        const ConnectionTokens connection = connection_tokens(*client_headers);
        for (const auto& field : *client_headers) {
            if (protocol::forward_request_header(field.name_string(), connection)) {
                upstream.insert(field.name_string(), field.value());
            }
        }
    }
    const auto& address = provider.address;
    const bool default_port = address.port == (address.tls ? 443 : 80);
    upstream.set(http::field::host,
                 default_port ? address.host : address.host + ":" + std::to_string(address.port));
    if (!credential.empty()) upstream.set(anthropic ? "x-api-key" : "authorization", credential);
    if (anthropic) upstream.set("anthropic-version", "2023-06-01");
    for (const auto& [name, value] : provider.headers) upstream.set(name, value);
    for (const auto& [name, value] : target.headers) upstream.set(name, value);
    upstream.set("x-request-id", request_id);
    upstream.set(http::field::content_type, "application/json");
    upstream.keep_alive(true);
    upstream.body() = std::move(body);
    upstream.prepare_payload();
    return upstream;
}

asio::awaitable<HeadExchange> exchange_head(std::shared_ptr<UpstreamPool> pool,
                                            http::request<http::string_body>* request,
                                            Clock::time_point deadline,
                                            Clock::time_point head_deadline) {
    HeadExchange exchange;
    auto acquired = co_await pool->acquire(deadline);
    if (!acquired) {
        exchange.ec = acquired.error();
        co_return exchange;
    }
    exchange.connection = std::move(*acquired);
    for (int tries = 0; tries < 2; ++tries) {
        exchange.head = std::make_unique<http::response_parser<http::empty_body>>();
        exchange.connection->tcp().expires_at(std::min(deadline, head_deadline));
        std::size_t n = 0;
        std::tie(exchange.ec, n) = co_await exchange.connection->write(*request);
        if (!exchange.ec) {
            std::tie(exchange.ec, n) = co_await exchange.connection->read_header(*exchange.head);
        }
        if (!exchange.ec) co_return exchange;
        const bool stale = exchange.connection->reused && tries == 0 &&
                           classify_upstream_error(exchange.ec) == UpstreamFailure::reset &&
                           exchange.connection->buffer().size() == 0;
        pool->release(std::move(exchange.connection), false);
        if (!stale) co_return exchange;
        auto fresh = co_await pool->connect_new(deadline);
        if (!fresh) {
            exchange.ec = fresh.error();
            co_return exchange;
        }
        exchange.connection = std::move(*fresh);
    }
    co_return exchange;
}

asio::awaitable<CallResult> call_upstream(std::shared_ptr<UpstreamPool> pool,
                                          http::request<http::string_body> request,
                                          Clock::time_point deadline) {
    CallResult result;
    HeadExchange exchange = co_await exchange_head(pool, &request, deadline, deadline);
    if (exchange.ec) {
        result.ec = exchange.ec;
        co_return result;
    }
    http::response_parser<http::string_body> parser{std::move(*exchange.head)};
    parser.body_limit(64ull << 20);
    exchange.connection->tcp().expires_at(deadline);
    auto [ec, n] = co_await exchange.connection->read_all(parser);
    pool->release(std::move(exchange.connection), !ec && parser.keep_alive());
    result.ec = ec;
    if (!ec) {
        result.status = parser.get().result_int();
        result.body = std::move(parser.get().body());
    }
    co_return result;
}

bool same_connection_settings(const config::ProviderConfig& a, const config::ProviderConfig& b) {
    return a.base_url == b.base_url && a.ca_file == b.ca_file && a.tls_verify == b.tls_verify &&
           a.max_connections == b.max_connections && a.connect_timeout == b.connect_timeout;
}

std::shared_ptr<asio::ssl::context> make_client_tls_context(
    const config::ProviderConfig& provider) {
    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1);
    context->set_default_verify_paths();
    if (!provider.ca_file.empty()) context->load_verify_file(provider.ca_file);
    context->set_verify_mode(provider.tls_verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
    return context;
}

}  // namespace turnout::upstream
