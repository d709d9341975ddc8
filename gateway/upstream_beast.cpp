#include "gateway/upstream.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/ssl.hpp>

#include "gateway/logging.hpp"

namespace turnout::gateway {
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

}  // namespace

std::string_view to_string(UpstreamFailure failure) {
    switch (failure) {
        case UpstreamFailure::connect: return "connect";
        case UpstreamFailure::timeout: return "timeout";
        case UpstreamFailure::reset: return "reset";
        case UpstreamFailure::tls: return "tls";
        case UpstreamFailure::protocol: return "protocol";
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

UpstreamPool::UpstreamPool(asio::any_io_executor executor, const routing::ProviderConfig& provider,
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
        asio::steady_timer timer(executor_, deadline);
        waiters_.push_back(&timer);
        auto [ec] = co_await timer.async_wait(kToken);
        std::erase(waiters_, &timer);
        if (!ec) co_return error_code(beast::error::timeout);
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

    asio::ip::tcp::resolver resolver(executor_);
    auto [resolve_ec, endpoints] =
        co_await resolver.async_resolve(address.host, std::to_string(address.port), kToken);
    if (resolve_ec) co_return resolve_ec;

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
        SSL_set_tlsext_host_name(ssl, address.host.c_str());
        SSL_set1_host(ssl, address.host.c_str());
    } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), address.host.c_str());
    }
    tls->next_layer().expires_at(connect_deadline);
    auto [handshake_ec] = co_await tls->async_handshake(asio::ssl::stream_base::client, kToken);
    if (handshake_ec) {
        const long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            log_event(gateway_log(), spdlog::level::warn, "upstream tls verification failed",
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
    asio::steady_timer* timer = waiters_.front();
    waiters_.pop_front();
    timer->cancel();
}

std::shared_ptr<asio::ssl::context> make_client_tls_context(
    const routing::ProviderConfig& provider) {
    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1);
    context->set_default_verify_paths();
    if (!provider.ca_file.empty()) context->load_verify_file(provider.ca_file);
    context->set_verify_mode(provider.tls_verify ? asio::ssl::verify_peer
                                                 : asio::ssl::verify_none);
    return context;
}

}  // namespace turnout::gateway
