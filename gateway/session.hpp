#pragma once
/// One client connection: its Session reads requests under the limits (request_reader.hpp)
/// and writes answers (session.cpp), serves the API by proxying (proxy.cpp) and relays streamed
/// answers event by event (relay.cpp, with the pump of sse_relay.hpp); the admin listener's
/// requests go to the admin API (admin_api.hpp).
///
/// Includes Beast: include it only from those translation units.
///
/// Thread safety: a Session lives on its worker's thread, from accept to close.

#include <rapidjson/fwd.h>

#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/errors.hpp"
#include "gateway/request_reader.hpp"
#include "gateway/request_record.hpp"
#include "gateway/sse_relay.hpp"
#include "gateway/worker.hpp"
#include "protocol/egress.hpp"

namespace turnout::gateway {

using Response = http::response<http::string_body>;

/// What one try against one target came to, and in the end what the proxy came to: an
/// answer to write whole (the one place that writes it is Session::proxy), or a stream the
/// relay has written already.
struct Attempt {
    enum class Result { delivered, upstream_status, failed };
    Result result = Result::failed;
    /// delivered: the whole answer for the client (none: a stream, already relayed);
    /// upstream_status: the upstream's 5xx or 429, passed on if nothing better comes.
    std::optional<Response> answer;
    bool keep_alive = false;  ///< a relayed stream: may the client connection go on?
    upstream::UpstreamFailure failure = upstream::UpstreamFailure::connect;
    bool circuit_open = false;      ///< failed: the provider's circuit breaker refused the attempt
    Clock::duration retry_after{};  ///< circuit_open: until the circuit may be probed

    /// A delivered answer the gateway makes itself (an error in the client's API shape).
    static Attempt answered(Response response);
};

/// An error in OpenAI's shape, with its status.
Response error_response(errc code, std::string_view message);
/// 503 + Retry-After (whole seconds, rounded up): the high-water mark, or open circuits.
Response unavailable_response(errc code, std::string_view message, Clock::duration retry_after);

/// The upstream's status as its number and reason: Beast's status enum knows no 529 (or 520),
/// and a response built from the enum would go out as `000 <unknown-status>`.
template <class Body>
void copy_status(const http::response_header<>& from, http::response<Body>& to) {
    const unsigned code = from.result_int();
    to.result(code);
    std::string_view reason = from.reason();
    if (reason.empty()) {
        const auto known = http::int_to_status(code);
        reason = known == http::status::unknown ? std::string_view("Unknown")
                                                : std::string_view(http::obsolete_reason(known));
    }
    to.reason(reason);
}

/// Copies the upstream's end-to-end response headers.
void copy_response_headers(const http::fields& from, http::fields& to);

/// The metrics label of an upstream failure.
metrics::UpstreamErrorKind metrics_kind(upstream::UpstreamFailure failure);

class Session {
  public:
    Session(Worker& worker, tcp::socket socket, Listener listener);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    asio::awaitable<void> run();

  private:
    using Request = http::request<http::string_body>;

    const config::Config& config() const { return *snapshot_->config; }

    // Reading and writing (session.cpp).
    asio::awaitable<bool> serve_one();
    asio::awaitable<bool> serve_api(Request& request, RequestRecord& record);
    asio::awaitable<bool> read_request(http::request_parser<http::string_body>& parser,
                                       RequestRecord& record);
    asio::awaitable<bool> handle_admin(Request& request, RequestRecord& record);
    asio::awaitable<bool> send_error(errc code, std::string_view message, RequestRecord& record,
                                     bool close);
    asio::awaitable<bool> send_json(unsigned status, std::string body, RequestRecord& record);
    asio::awaitable<bool> send_response(Response& response, RequestRecord& record);
    void add_turnout_headers(http::fields& fields, const RequestRecord& record) const;
    void start_request_timer();
    void finish_request(RequestRecord& record) const;
    bool keep_alive() const { return keep_alive_ && !worker_.shared.draining; }
    ReadLimits read_limits() const;
    std::int64_t inflight_limit() const;

    // The API and the proxy (proxy.cpp).
    asio::awaitable<bool> handle_api(Request& request, RequestRecord& record);
    bool authenticate(const Request& request, RequestRecord& record);
    asio::awaitable<bool> proxy(Request& request, std::string_view suffix, RequestRecord& record);
    asio::awaitable<Attempt> forward(const Request& request, std::string_view suffix,
                                     RequestRecord& record,
                                     std::shared_ptr<shadow::RouteChannel>& channel);
    asio::awaitable<Attempt> attempt(const Request& request, const rapidjson::Document& document,
                                     const config::RouteConfig& route_config,
                                     const config::TargetConfig& target, std::string_view suffix,
                                     Clock::time_point route_deadline, RequestRecord& record);
    static void settle_failure(Attempt& last);
    void after_live_answer(const Request& request, shadow::RouteChannel& channel,
                           RequestRecord& record);
    asio::awaitable<Attempt> read_answer(http::response_parser<http::empty_body>& head,
                                         upstream::ConnectionPtr connection,
                                         std::shared_ptr<upstream::UpstreamPool> pool,
                                         const protocol::Egress& egress, Clock::time_point deadline,
                                         RequestRecord& record);

    // The SSE relay (relay.cpp).
    asio::awaitable<bool> relay_stream(http::response_parser<http::empty_body>& head,
                                       upstream::ConnectionPtr connection,
                                       std::shared_ptr<upstream::UpstreamPool> pool,
                                       const config::ProviderConfig& provider,
                                       Clock::time_point deadline, RequestRecord& record);
    asio::awaitable<void> watch_client(RelayState* state, upstream::UpstreamConnection* upstream);

    Worker& worker_;
    std::shared_ptr<const Snapshot> snapshot_;  // the config the current request runs on
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    Listener listener_;
    /// What the request timer's callback may touch. An expiry already queued cannot be
    /// cancelled, so the callback checks that the session still exists and that it belongs to
    /// the current request before it cancels anything.
    struct RequestTimerState {
        beast::tcp_stream* stream = nullptr;  // null once the session is gone
        std::uint64_t generation = 0;
        bool timed_out = false;
    };
    asio::steady_timer request_timer_;
    std::shared_ptr<RequestTimerState> timer_state_ = std::make_shared<RequestTimerState>();
    bool keep_alive_ = true;
    bool http10_ = false;  // the current request is HTTP/1.0: no chunked framing for it
    std::list<SessionEntry>::iterator entry_;
};

}  // namespace turnout::gateway
