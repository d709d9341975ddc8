// The simulator's HTTP/1.1 sessions: reading requests, dispatching them to the control
// endpoints and the API handlers, and writing answers (the I/O steps of sim/exchange.hpp).
//
// Allocations: the benchmark must never be bounded by the simulator, so a kept-alive
// non-streaming request reuses per-connection memory throughout: a basic_parser subclass
// records the request into reused strings (no Beast fields map), RapidJSON parses into a
// per-connection arena, and responses are rendered into reused strings (no Beast serializer)
// and sent with one gather write.

#include "sim/session.hpp"

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "sim/anthropic_api.hpp"
#include "sim/control.hpp"
#include "sim/errors.hpp"
#include "sim/exchange.hpp"
#include "sim/json_writer.hpp"
#include "sim/openai_api.hpp"
#include "sim/plan.hpp"

namespace turnout::sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using namespace std::literals;

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr std::uint64_t kMaxBodyBytes = 64ull * 1024 * 1024;
constexpr auto kIdleTimeout = 300s;
constexpr auto kBodyTimeout = 60s;
constexpr auto kWriteTimeout = 30s;
constexpr auto kHandshakeTimeout = 10s;
constexpr auto kCloseTimeout = 2s;

// Starts like no HTTP version, so a client's response parser fails on the first line.
constexpr std::string_view kGarbage = "SIMULATED GARBAGE \x01\x02\x03 this is not HTTP\r\n\r\n";

std::string_view reason_phrase(unsigned status) {
    const std::string_view reason = http::obsolete_reason(http::int_to_status(status));
    return reason == "<unknown-status>" ? "Status" : reason;
}

/// Parses one request straight into a reused RequestData: http::request_parser would allocate
/// a fields map and a fresh body for every request on a kept-alive connection. (Boost 1.81's
/// basic_parser hooks take boost::core::string_view whatever BOOST_BEAST_USE_STD_STRING_VIEW.)
class RequestReader final : public http::basic_parser<true> {
  public:
    explicit RequestReader(RequestData& out) : out_(out) {
        header_limit(kMaxHeaderBytes);
        body_limit(kMaxBodyBytes);
    }

  private:
    void on_request_impl(http::verb, beast::string_view method, beast::string_view target,
                         int version, error_code&) override {
        out_.method.assign(method);
        out_.target.assign(target);
        out_.version = version;
    }
    void on_response_impl(int, beast::string_view, int, error_code&) override {}
    void on_field_impl(http::field, beast::string_view name, beast::string_view value,
                       error_code&) override {
        out_.add_header(name, value);
    }
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
        if (length) {
            out_.body.reserve(static_cast<std::size_t>(*length));  // within body_limit
        }
    }
    std::size_t on_body_impl(beast::string_view body, error_code&) override {
        out_.body.append(body);
        return body.size();
    }
    void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code&) override {
        out_.body.append(body);
        return body.size();
    }
    void on_finish_impl(error_code&) override {}

    RequestData& out_;
};

template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

template <class Stream>
Stream wrap_socket(tcp::socket socket, ssl::context* tls) {
    if constexpr (kIsTls<Stream>) {
        return Stream(std::move(socket), *tls);
    } else {
        return Stream(std::move(socket));
    }
}

/// One client connection, over plain TCP or TLS. Lives in the frame of run_session() on a
/// single-threaded io_context, so it needs no strand. Requests are read and answered one at a
/// time, which answers pipelined requests in order.
template <class Stream>
class Session final : public Exchange {
  public:
    Session(tcp::socket socket, std::shared_ptr<SimState> state, std::shared_ptr<ssl::context> tls)
        : Exchange(std::move(state)),
          tls_(std::move(tls)),
          stream_(wrap_socket<Stream>(std::move(socket), tls_.get())),
          timer_(stream_.get_executor()) {}

    asio::awaitable<void> run();

    asio::awaitable<After> send_json(unsigned status) override;
    asio::awaitable<bool> write_stream_head() override;
    asio::awaitable<bool> write_frame(bool last) override;
    asio::awaitable<void> sleep_until(Clock::time_point when) override;
    After reset_connection() override;

  private:
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

    asio::awaitable<bool> handshake();
    asio::awaitable<After> serve_one();
    asio::awaitable<error_code> read_request();
    asio::awaitable<After> reject_unreadable(error_code ec);
    asio::awaitable<After> respond();
    asio::awaitable<bool> write_raw(std::string_view bytes);
    asio::awaitable<After> hang_until_closed();
    asio::awaitable<void> shutdown();
    void record_last_request();
    void render_head(unsigned status, std::string_view content_type,
                     std::optional<std::size_t> content_length);

    std::shared_ptr<ssl::context> tls_;  // null for plain TCP
    Stream stream_;
    asio::steady_timer timer_;
    beast::flat_buffer buffer_;
    bool chunked_ = true;
    std::string head_;                  // the response head
    std::uint64_t request_number_ = 0;  // anthropic: the request-id header; 0: none
    OpenAiApi openai_{*this};
    AnthropicApi anthropic_{*this};
};

template <class Stream>
asio::awaitable<void> Session<Stream>::run() {
    if (!co_await handshake()) {
        co_return;
    }
    After after = After::next_request;
    while (after == After::next_request) {
        after = co_await serve_one();
    }
    if (after == After::close) {
        co_await shutdown();
    }
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::handshake() {
    if constexpr (kIsTls<Stream>) {
        lowest().expires_after(kHandshakeTimeout);
        auto [ec] = co_await stream_.async_handshake(ssl::stream_base::server, kToken);
        co_return !ec;
    } else {
        co_return true;
    }
}

template <class Stream>
asio::awaitable<After> Session<Stream>::serve_one() {
    const error_code ec = co_await read_request();
    if (ec) {
        co_return co_await reject_unreadable(ec);
    }
    co_return co_await respond();
}

template <class Stream>
asio::awaitable<error_code> Session<Stream>::read_request() {
    request_.clear();
    request_number_ = 0;
    RequestReader reader(request_);
    lowest().expires_after(kIdleTimeout);
    auto [ec, bytes] = co_await http::async_read_header(stream_, buffer_, reader, kToken);
    if (ec) {
        co_return ec;
    }
    keep_alive_ = reader.keep_alive();
    // curl and others wait (up to a second) for this before sending a large body.
    if (beast::iequals(request_.header("expect"), "100-continue")) {
        const bool sent = co_await write_raw("HTTP/1.1 100 Continue\r\n\r\n");
        if (!sent) {
            co_return asio::error::connection_reset;
        }
    }
    if (!reader.is_done()) {
        lowest().expires_after(kBodyTimeout);
        auto [body_ec, body_bytes] = co_await http::async_read(stream_, buffer_, reader, kToken);
        co_return body_ec;
    }
    co_return error_code{};
}

template <class Stream>
asio::awaitable<After> Session<Stream>::reject_unreadable(error_code ec) {
    keep_alive_ = false;
    if (ec == http::error::header_limit) {
        render_failure(431, "request header too large", "header_too_large");
        co_return co_await send_json(431);
    }
    if (ec == http::error::body_limit) {
        render_failure(413, "request body too large", "body_too_large");
        co_return co_await send_json(413);
    }
    const auto& http_errors = http::make_error_code(http::error::bad_target).category();
    const bool malformed = ec.category() == http_errors && ec != http::error::end_of_stream &&
                           ec != http::error::partial_message;
    if (!malformed) {
        co_return After::drop;  // the client went away or timed out
    }
    render_failure(400, "malformed HTTP request", "bad_request");
    co_return co_await send_json(400);
}

// The planned failures that need the raw connection (a hang, garbage) or no handler (a status)
// come first; resets and stream errors happen in the handlers, where the frames are.
template <class Stream>
asio::awaitable<After> Session<Stream>::respond() {
    const std::string_view target = request_.target;
    const std::string_view path = target.substr(0, target.find('?'));
    if (path.starts_with("/_sim/")) {
        co_return co_await send_json(serve_control(*this, path));
    }
    request_number_ = state_->stats.requests.fetch_add(1, std::memory_order_relaxed) + 1;
    record_last_request();
    Plan plan;
    const std::string problem = plan_request(settings(), request_, override_words_, plan);
    if (!problem.empty()) {
        render_failure(400, problem, "invalid_simulator_header");
        co_return co_await send_json(400);
    }
    if (plan.faults.hang) {
        co_return co_await hang_until_closed();
    }
    if (plan.faults.garbage) {
        const bool sent = co_await write_raw(kGarbage);
        co_return sent ? After::close : After::drop;
    }
    if (plan.faults.status != 0) {
        const auto status = static_cast<unsigned>(plan.faults.status);
        render_fault(body(), settings().kind, status);
        co_return co_await send_json(status);
    }
    if (anthropic()) {
        co_return co_await anthropic_.serve(path, plan);
    }
    co_return co_await openai_.serve(path, plan);
}

template <class Stream>
asio::awaitable<After> Session<Stream>::send_json(unsigned status) {
    render_head(status, kJson, body().size());
    lowest().expires_after(kWriteTimeout);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body())};
    auto [ec, bytes] = co_await asio::async_write(stream_, buffers, kToken);
    if (ec) {
        co_return After::drop;
    }
    co_return keep_alive_ ? After::next_request : After::close;
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::write_stream_head() {
    // HTTP/1.0 has no chunked encoding: such a stream ends by closing the connection.
    chunked_ = request_.version >= 11;
    keep_alive_ = keep_alive_ && chunked_;
    render_head(200, "text/event-stream", std::nullopt);
    co_return co_await write_raw(head_);
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::write_raw(std::string_view bytes) {
    lowest().expires_after(kWriteTimeout);
    auto [ec, written] = co_await asio::async_write(stream_, asio::buffer(bytes), kToken);
    co_return !ec;
}

// One write per SSE frame (TCP_NODELAY is set), so the client sees each frame when it is sent.
// The chunk framing is rendered here rather than with http::make_chunk, which allocates.
template <class Stream>
asio::awaitable<bool> Session<Stream>::write_frame(bool last) {
    if (!chunked_) {
        co_return co_await write_raw(frame());
    }
    std::array<char, 24> size_line{};
    auto [end, ec] = std::to_chars(size_line.data(), size_line.data() + 20, frame().size(), 16);
    *end++ = '\r';
    *end++ = '\n';
    const std::string_view trailer = last ? "\r\n0\r\n\r\n"sv : "\r\n"sv;
    const std::array<asio::const_buffer, 3> buffers{
        asio::buffer(size_line.data(), static_cast<std::size_t>(end - size_line.data())),
        asio::buffer(frame()), asio::buffer(trailer)};
    lowest().expires_after(kWriteTimeout);
    auto [write_ec, written] = co_await asio::async_write(stream_, buffers, kToken);
    co_return !write_ec;
}

template <class Stream>
asio::awaitable<void> Session<Stream>::sleep_until(Clock::time_point when) {
    if (when <= Clock::now()) {
        co_return;
    }
    timer_.expires_at(when);
    co_await timer_.async_wait(kToken);  // only cancelled at shutdown
}

// Reads and discards until the client closes: no answer, no timeout.
template <class Stream>
asio::awaitable<After> Session<Stream>::hang_until_closed() {
    lowest().expires_never();
    std::array<char, 512> sink{};
    for (;;) {
        auto [ec, bytes] = co_await stream_.async_read_some(asio::buffer(sink), kToken);
        if (ec) {
            co_return After::drop;
        }
    }
}

template <class Stream>
asio::awaitable<void> Session<Stream>::shutdown() {
    if constexpr (kIsTls<Stream>) {
        lowest().expires_after(kCloseTimeout);
        co_await stream_.async_shutdown(kToken);
    } else {
        error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
}

// SO_LINGER 0 makes close() send a RST: the peer sees a connection reset, not a clean EOF.
template <class Stream>
After Session<Stream>::reset_connection() {
    error_code ignored;
    lowest().socket().set_option(asio::socket_base::linger(true, 0), ignored);
    lowest().socket().close(ignored);
    return After::drop;
}

template <class Stream>
void Session<Stream>::record_last_request() {
    std::lock_guard lock(state_->last_mutex);
    state_->last.assign_from(request_);
    state_->has_last = true;
}

// Without a content length the body is chunked (or, for HTTP/1.0, ends at close).
template <class Stream>
void Session<Stream>::render_head(unsigned status, std::string_view content_type,
                                  std::optional<std::size_t> content_length) {
    head_ = "HTTP/1.1 ";
    append_number(head_, status);
    head_ += ' ';
    head_ += reason_phrase(status);
    head_ += "\r\nContent-Type: ";
    head_ += content_type;
    if (content_length) {
        head_ += "\r\nContent-Length: ";
        append_number(head_, *content_length);
    } else {
        head_ += "\r\nCache-Control: no-cache";
        head_ += chunked_ ? "\r\nTransfer-Encoding: chunked" : "";
    }
    if (status == 429) {
        head_ += "\r\nRetry-After: 1";
    }
    if (request_number_ != 0 && anthropic()) {
        head_ += "\r\nrequest-id: req_sim_";
        append_number(head_, request_number_);
    }
    if (!keep_alive_) {
        head_ += "\r\nConnection: close";
    } else if (request_.version == 10) {
        head_ += "\r\nConnection: keep-alive";
    }
    head_ += "\r\n\r\n";
}

template class Session<beast::tcp_stream>;
template class Session<TlsStream>;

template <class Stream>
asio::awaitable<void> run_session(tcp::socket socket, std::shared_ptr<SimState> state,
                                  std::shared_ptr<ssl::context> tls) {
    Session<Stream> session(std::move(socket), std::move(state), std::move(tls));
    co_await session.run();
}

}  // namespace

void spawn_session(tcp::socket socket, std::shared_ptr<SimState> state,
                   std::shared_ptr<ssl::context> tls) {
    const auto executor = socket.get_executor();
    if (tls) {
        asio::co_spawn(executor,
                       run_session<TlsStream>(std::move(socket), std::move(state), std::move(tls)),
                       asio::detached);
    } else {
        asio::co_spawn(executor,
                       run_session<beast::tcp_stream>(std::move(socket), std::move(state), nullptr),
                       asio::detached);
    }
}

}  // namespace turnout::sim
