// Client connections: reading requests under limits, the API and admin handlers, the proxy
// with retries and fallbacks, and relaying answers (whole, or SSE event by event).

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <random>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "gateway/anthropic.hpp"
#include "gateway/errors.hpp"
#include "gateway/framing.hpp"
#include "gateway/hop_headers.hpp"
#include "gateway/logging.hpp"
#include "gateway/runtime.hpp"
#include "gateway/sse.hpp"
#include "gateway/upstream_body.hpp"
#include "routing/json_input.hpp"
#include "routing/sampling.hpp"

namespace turnout::gateway {
namespace {

using routing::Duration;
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kRequestIdHeader = "x-request-id";
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::uint64_t kMaxUpstreamBody = 64ull << 20;  // non-streamed answers, read whole
constexpr std::size_t kMaxSseEvent = 4u << 20;
// Longer request targets get 414, as with nginx's default large_client_header_buffers.
constexpr std::size_t kMaxTargetBytes = 8 * 1024;
// Upstream answers are read for usage only: depth bounded, duplicate keys tolerated.
constexpr routing::JsonInputOptions kUpstreamJson{.reject_duplicate_keys = false};
// A sampled pair bigger than this is skipped (and counted): the queue must stay bounded.
constexpr std::size_t kMaxShadowBytes = 1u << 20;

double seconds_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

std::string new_request_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return fmt::format("{:016x}{:016x}", rng(), rng());
}

/// A client's x-request-id is kept when it is short and printable (it reaches logs).
bool acceptable_request_id(std::string_view id) {
    if (id.empty() || id.size() > 128) return false;
    return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

/// Copies the upstream's end-to-end response headers.
void copy_response_headers(const http::fields& from, http::fields& to) {
    const ConnectionTokens connection = connection_tokens(from);
    for (const auto& field : from) {
        if (forward_response_header(field.name_string(), connection)) {
            to.insert(field.name_string(), field.value());
        }
    }
}

bool retryable_status(unsigned status) { return status >= 500 || status == 429; }

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

metrics::UpstreamErrorKind metrics_kind(UpstreamFailure failure) {
    switch (failure) {
        case UpstreamFailure::connect: return metrics::UpstreamErrorKind::connect;
        case UpstreamFailure::timeout: return metrics::UpstreamErrorKind::timeout;
        case UpstreamFailure::reset: return metrics::UpstreamErrorKind::reset;
        case UpstreamFailure::tls: return metrics::UpstreamErrorKind::tls;
        case UpstreamFailure::protocol: return metrics::UpstreamErrorKind::protocol;
    }
    return metrics::UpstreamErrorKind::protocol;
}

/// Per-request facts for the access log, metrics and the x-turnout-* headers.
struct RequestRecord {
    Clock::time_point start = Clock::now();
    std::optional<Clock::time_point> first_byte;
    std::string request_id;
    bool request_id_from_client = false;
    std::string method;
    std::string path;
    std::string route;
    std::string target;
    std::string key_name;
    unsigned status = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t input_tokens = 0;
    std::uint64_t output_tokens = 0;
    std::optional<std::string> speed;  // Anthropic fast mode, from usage.speed
    Clock::duration upstream_time{};
    unsigned attempts = 0;
    bool stream = false;
    bool include_usage = false;
    bool serving_candidate = false;
    std::string decided_target;  // provider/model the route chose (a fallback may answer instead)
    bool capture = false;  // sampled for the shadow: keep the answer for the judge
    bool capture_skipped = false;  // sampled, but the answer was too big to keep (counted)
    std::string captured_body;
    std::vector<std::string> captured_payloads;
    std::size_t captured_bytes = 0;
    bool client_gone = false;
    std::string_view upstream_failure;
    std::shared_ptr<metrics::TargetMetrics> metrics;
};

/// What one try against one target came to.
struct Attempt {
    enum class Result { delivered, upstream_status, failed };
    Result result = Result::failed;
    bool keep_alive = false;  // delivered: may the client connection go on?
    UpstreamFailure failure = UpstreamFailure::connect;
    bool circuit_open = false;  // failed: the provider's circuit breaker refused the attempt
    Clock::duration retry_after{};  // circuit_open: until the circuit may be probed
    std::optional<http::response<http::string_body>> answer;  // upstream 5xx/429 to pass on
};

/// Shared between the SSE pump and the client watcher of one streamed answer.
struct RelayState {
    UpstreamConnection* upstream;
    http::response_parser<http::buffer_body>* parser;
    anthropic::StreamTranslator* translator;  // null: OpenAI events pass through as they are
    Clock::time_point deadline;
    Duration idle_timeout;
    std::optional<UpstreamFailure> failure;
    bool client_gone = false;
    bool translator_failed = false;
};

/// Keeps the data payloads of relayed events for the judge, bounded: a stream too long to
/// keep is not sampled after all.
void capture_events(std::string_view events, RequestRecord& record) {
    record.captured_bytes += events.size();
    if (record.captured_bytes > kMaxShadowBytes) {
        record.capture = false;
        record.capture_skipped = true;
        record.captured_payloads.clear();
        return;
    }
    for (std::size_t at = 0; at < events.size();) {
        auto end = events.find("\n\n", at);
        end = end == std::string_view::npos ? events.size() : end + 2;
        std::string data = sse_event_data(events.substr(at, end - at));
        if (!data.empty()) record.captured_payloads.push_back(std::move(data));
        at = end;
    }
}

/// Takes the usage figures an OpenAI answer (or usage chunk) reports, when it reports any.
void read_openai_usage(const rapidjson::Value& answer, RequestRecord& record) {
    const Usage usage = openai_usage(answer);
    if (usage.input != 0 || usage.output != 0) {
        record.input_tokens = usage.input;
        record.output_tokens = usage.output;
    }
}

class Session {
public:
    Session(Worker& worker, tcp::socket socket, Listener listener)
        : worker_(worker),
          snapshot_(worker.shared.snapshot()),
          stream_(std::move(socket)),
          listener_(listener),
          request_timer_(stream_.get_executor()) {
        entry_ = worker_.sessions.insert(worker_.sessions.end(), {&stream_, true});
        timer_state_->stream = &stream_;
    }
    ~Session() {
        timer_state_->stream = nullptr;
        worker_.sessions.erase(entry_);
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    asio::awaitable<void> run();

private:
    const routing::Config& config() const { return *snapshot_->config; }
    asio::awaitable<bool> serve_one();
    asio::awaitable<bool> read_request(http::request_parser<http::string_body>& parser,
                                       RequestRecord& record);
    asio::awaitable<bool> handle_api(http::request<http::string_body>& request,
                                     RequestRecord& record);
    asio::awaitable<bool> handle_admin(http::request<http::string_body>& request,
                                       RequestRecord& record);
    asio::awaitable<bool> reload(RequestRecord& record);
    asio::awaitable<bool> handle_routes_admin(http::request<http::string_body>& request,
                                              RequestRecord& record);
    bool authenticate(const http::request<http::string_body>& request, RequestRecord& record);
    asio::awaitable<bool> proxy(http::request<http::string_body>& request, std::string_view suffix,
                                RequestRecord& record);
    asio::awaitable<Attempt> attempt(const http::request<http::string_body>& request,
                                     const rapidjson::Document& document,
                                     const routing::RouteConfig& route_config,
                                     const routing::TargetConfig& target, std::string_view suffix,
                                     Clock::time_point route_deadline, RequestRecord& record);
    asio::awaitable<bool> deliver_last_failure(Attempt last, RequestRecord& record);
    void after_live_answer(const http::request<http::string_body>& request, RouteChannel& channel,
                           RequestRecord& record);
    asio::awaitable<Attempt> read_answer(http::response_parser<http::empty_body>& head,
                                         ConnectionPtr connection,
                                         std::shared_ptr<UpstreamPool> pool,
                                         const routing::ProviderConfig* provider,
                                         Clock::time_point deadline, RequestRecord& record);
    asio::awaitable<bool> relay_stream(http::response_parser<http::empty_body>& head,
                                       ConnectionPtr connection,
                                       std::shared_ptr<UpstreamPool> pool,
                                       const routing::ProviderConfig* provider,
                                       Clock::time_point deadline, RequestRecord& record);
    asio::awaitable<void> pump_events(RelayState* state, RequestRecord* record);
    asio::awaitable<void> watch_client(RelayState* state);
    asio::awaitable<bool> send_error(errc code, std::string_view message, RequestRecord& record,
                                     bool close);
    asio::awaitable<bool> send_json(unsigned status, std::string body, RequestRecord& record);
    asio::awaitable<bool> send_unavailable(errc code, std::string_view message,
                                           Clock::duration retry_after, RequestRecord& record);
    asio::awaitable<bool> send_response(http::response<http::string_body>& response,
                                        RequestRecord& record);
    asio::awaitable<bool> write_chunk(std::string_view data, RequestRecord& record);
    asio::awaitable<bool> end_stream_body();
    void add_turnout_headers(http::fields& fields, const RequestRecord& record) const;
    void start_request_timer();
    void finish_request(RequestRecord& record) const;
    bool keep_alive() const { return keep_alive_ && !worker_.shared.draining; }
    /// Unparsed request bytes held at once: a header block (and a chunk line, and trailers)
    /// can be no longer than max_header_bytes, plus one read.
    std::size_t request_buffer_limit() const {
        return static_cast<std::size_t>(config().limits.max_header_bytes) + kReadChunk;
    }
    std::int64_t inflight_limit() const {
        const auto& limits = config().limits;
        if (limits.max_inflight != 0) return limits.max_inflight;
        // The connections actually accepted: max_connections may be capped by the fd limit.
        const std::int64_t accepted =
            std::min<std::int64_t>(limits.max_connections,
                                   std::int64_t{worker_.connection_limit} * worker_.shared.threads);
        return std::max<std::int64_t>(1, accepted * 9 / 10);
    }

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

asio::awaitable<void> Session::run() {
    bool first_request = true;
    for (;;) {
        entry_->idle = true;
        if (worker_.shared.draining) break;
        if (buffer_.size() == 0) {
            // Waiting for the next request: the keep-alive idle timeout (client_timeout for
            // a fresh connection). Nothing is owed to a client that sent nothing.
            const auto& limits = config().limits;
            stream_.expires_after(first_request ? limits.client_timeout : limits.keepalive_timeout);
            buffer_.max_size(request_buffer_limit());
            auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kReadChunk), kToken);
            if (ec) break;
            buffer_.commit(n);
        }
        stream_.expires_never();
        entry_->idle = false;
        snapshot_ = worker_.shared.snapshot();  // a request runs on the config it started with
        const bool keep = co_await serve_one();
        first_request = false;
        if (!keep) break;
    }
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
}

void Session::start_request_timer() {
    // Our own timer rather than tcp_stream's expiry, which would close the socket before
    // the 408 could be written.
    auto state = timer_state_;
    state->timed_out = false;
    const std::uint64_t generation = ++state->generation;
    request_timer_.expires_after(config().limits.client_timeout);
    request_timer_.async_wait([state, generation](const error_code& ec) {
        if (ec || state->stream == nullptr || state->generation != generation) return;
        state->timed_out = true;
        error_code ignored;
        state->stream->socket().cancel(ignored);
    });
}

asio::awaitable<bool> Session::serve_one() {
    RequestRecord record;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(config().limits.max_header_bytes));
    parser.body_limit(config().limits.max_body_bytes);
    buffer_.max_size(std::max(request_buffer_limit(), buffer_.size()));
    start_request_timer();
    const bool complete = co_await read_request(parser, record);
    request_timer_.cancel();
    ++timer_state_->generation;  // an expiry already queued must not touch later phases
    if (!complete) {
        if (record.status != 0) finish_request(record);
        co_return false;
    }
    auto& request = parser.get();
    keep_alive_ = request.keep_alive();
    http10_ = request.version() == 10;
    if (listener_ == Listener::admin) {
        // Admin calls (a scrape among them) are not live traffic: they do not count in flight.
        const bool keep = co_await handle_admin(request, record);
        finish_request(record);
        co_return keep && keep_alive();
    }
    /// Counts the request in flight (the high-water mark, the gauge) for its whole life,
    /// whatever way it ends.
    struct InflightGuard {
        explicit InflightGuard(Shared& s)
            : shared(s), count(s.inflight.fetch_add(1, std::memory_order_relaxed) + 1) {
            if (shared.metrics != nullptr) shared.metrics->inflight_add(1);
        }
        ~InflightGuard() {
            shared.inflight.fetch_sub(1, std::memory_order_relaxed);
            if (shared.metrics != nullptr) shared.metrics->inflight_add(-1);
        }
        InflightGuard(const InflightGuard&) = delete;
        InflightGuard& operator=(const InflightGuard&) = delete;
        Shared& shared;
        const std::int64_t count;
    } inflight{worker_.shared};
    bool keep = false;
    if (inflight.count > inflight_limit()) {
        // The high-water mark: a fast, retryable refusal rather than a queue that grows. One
        // warning a second per worker at most: an overload must not also flood the log.
        const auto now = Clock::now();
        if (now - worker_.last_overload_log >= std::chrono::seconds(1)) {
            worker_.last_overload_log = now;
            log_event(gateway_log(), spdlog::level::warn, "request refused at the high-water mark",
                      {{"request_id", record.request_id},
                       {"inflight", inflight.count - 1},
                       {"limit", inflight_limit()}});
        }
        keep_alive_ = false;
        co_await send_unavailable(errc::overloaded, "the gateway is at its limit of requests in flight",
                                  std::chrono::seconds(1), record);
    } else {
        keep = co_await handle_api(request, record);
    }
    finish_request(record);
    co_return keep && keep_alive();
}

/// Reads one request under the limits. False when the connection must close (an error
/// answer was sent when there was someone to send it to).
asio::awaitable<bool> Session::read_request(http::request_parser<http::string_body>& parser,
                                            RequestRecord& record) {
    auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser, kToken);
    std::size_t header_fields = 0;
    if (!ec) {
        const auto& head = parser.get();
        record.method = std::string(head.method_string());
        record.path = std::string(head.target().substr(0, head.target().find('?')));
        const auto id = head[kRequestIdHeader];
        record.request_id_from_client = acceptable_request_id(id);
        record.request_id = record.request_id_from_client ? std::string(id) : new_request_id();
        // Beast bounds the request line and the fields each by the limit: bound their sum.
        if (n > config().limits.max_header_bytes) {
            log_event(gateway_log(), spdlog::level::warn, "rejected request head",
                      {{"request_id", record.request_id}, {"reason", "header block too large"}});
            co_await send_error(errc::headers_too_large, "request header block too large", record,
                                true);
            co_return false;
        }
        if (head.target().size() > kMaxTargetBytes) {
            log_event(gateway_log(), spdlog::level::warn, "rejected request head",
                      {{"request_id", record.request_id}, {"reason", "request target too long"}});
            co_await send_error(errc::uri_too_long, "request target too long", record, true);
            co_return false;
        }
        std::vector<HeaderView> fields;
        for (const auto& field : head) fields.emplace_back(field.name_string(), field.value());
        header_fields = fields.size();
        const FramingVerdict verdict = check_request_framing(head.version(), fields);
        if (!verdict.ok) {
            log_event(gateway_log(), spdlog::level::warn, "rejected request framing",
                      {{"request_id", record.request_id}, {"reason", verdict.reason}});
            co_await send_error(verdict.status == 505 ? errc::version_not_supported
                                                      : errc::bad_request,
                                verdict.reason, record, true);
            co_return false;
        }
        if (head[http::field::expect] == "100-continue") {
            http::response<http::empty_body> go_on{http::status::continue_, 11};
            auto [write_ec, written] = co_await http::async_write(stream_, go_on, kToken);
            ec = write_ec;
        }
        if (!ec) std::tie(ec, n) = co_await http::async_read(stream_, buffer_, parser, kToken);
    }
    if (record.request_id.empty()) record.request_id = new_request_id();
    if (!ec) {
        // Beast adds chunked trailers to the header fields; a request's trailers are not
        // forwarded (nginx ignores them too), so nothing the client sends late can pose as a
        // header that routing, authentication or the upstream would read.
        auto& request = parser.get();
        auto field = request.begin();
        for (std::size_t i = 0; i < header_fields && field != request.end(); ++i) ++field;
        while (field != request.end()) field = request.erase(field);
        record.bytes_in = request.body().size();
        co_return true;
    }
    if (timer_state_->timed_out) {
        co_await send_error(errc::request_timeout, "request not received in time", record, true);
    } else if (ec == http::error::header_limit) {
        co_await send_error(errc::headers_too_large, "request header block too large", record,
                            true);
    } else if (ec == http::error::body_limit) {
        co_await send_error(errc::request_too_large, "request body too large", record, true);
    } else if (ec == http::error::bad_version) {
        co_await send_error(errc::version_not_supported, "HTTP version not supported", record,
                            true);
    } else if (ec == http::error::buffer_overflow) {
        // More unparsed bytes than a header block may hold: the head itself, or a chunk line
        // (extensions) or trailers of a chunked body.
        if (parser.is_header_done()) {
            co_await send_error(errc::bad_request, "chunk extensions or trailers too long", record,
                                true);
        } else {
            co_await send_error(errc::headers_too_large, "request header block too large", record,
                                true);
        }
    } else if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
        co_await send_error(errc::bad_request, "malformed HTTP request: " + ec.message(), record,
                            true);
    }
    co_return false;
}

void Session::add_turnout_headers(http::fields& fields, const RequestRecord& record) const {
    fields.set(kRequestIdHeader, record.request_id);
    fields.set("x-turnout-route", record.route);
    fields.set("x-turnout-target", record.target);
}

asio::awaitable<bool> Session::send_response(http::response<http::string_body>& response,
                                             RequestRecord& record) {
    add_turnout_headers(response, record);
    response.keep_alive(keep_alive());
    response.prepare_payload();
    record.status = response.result_int();
    record.bytes_out = response.body().size();
    stream_.expires_after(config().limits.client_timeout);
    auto [ec, n] = co_await http::async_write(stream_, response, kToken);
    if (!record.first_byte) record.first_byte = Clock::now();
    co_return !ec;
}

asio::awaitable<bool> Session::send_json(unsigned status, std::string body,
                                         RequestRecord& record) {
    http::response<http::string_body> response{static_cast<http::status>(status), 11};
    response.set(http::field::content_type, "application/json");
    response.body() = std::move(body);
    co_return co_await send_response(response, record);
}

/// 503 + Retry-After (whole seconds, rounded up): the high-water mark, or open circuits.
asio::awaitable<bool> Session::send_unavailable(errc code, std::string_view message,
                                                Clock::duration retry_after,
                                                RequestRecord& record) {
    http::response<http::string_body> response{http::status::service_unavailable, 11};
    response.set(http::field::content_type, "application/json");
    const auto seconds = std::max<std::int64_t>(
        1, std::chrono::ceil<std::chrono::seconds>(retry_after).count());
    response.set(http::field::retry_after, std::to_string(seconds));
    response.body() = openai_error_body(code, message);
    co_return co_await send_response(response, record);
}

asio::awaitable<bool> Session::send_error(errc code, std::string_view message,
                                          RequestRecord& record, bool close) {
    if (close) keep_alive_ = false;
    const bool sent = co_await send_json(error_shape(code).status,
                                         openai_error_body(code, message), record);
    co_return sent && !close;
}

// ---------------------------------------------------------------------------------------
// Admin listener

asio::awaitable<ReloadOutcome> run_reload(Shared* shared) { co_return shared->reload(); }

asio::awaitable<bool> Session::reload(RequestRecord& record) {
    if (worker_.shared.draining) {  // the control loop has stopped: nobody would answer
        co_return co_await send_json(503, R"({"status":"draining","errors":[]})", record);
    }
    // Reloads run on the control thread, one at a time, off every worker's data path.
    const ReloadOutcome outcome = co_await asio::co_spawn(
        *worker_.shared.control, run_reload(&worker_.shared), asio::use_awaitable);
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    writer.StartObject();
    writer.Key("status");
    writer.String(outcome.ok ? "reloaded" : "rejected");
    writer.Key("errors");
    writer.StartArray();
    for (const auto& error : outcome.errors) writer.String(error);
    writer.EndArray();
    writer.EndObject();
    co_return co_await send_json(outcome.ok ? 200 : 400, {out.GetString(), out.GetSize()},
                                 record);
}

asio::awaitable<bool> Session::handle_admin(http::request<http::string_body>& request,
                                            RequestRecord& record) {
    const bool get = request.method() == http::verb::get;
    if (get && record.path == "/healthz") {
        co_return co_await send_json(200, R"({"status":"ok"})", record);
    }
    if (get && record.path == "/readyz") {
        if (worker_.shared.draining) {
            co_return co_await send_json(503, R"({"status":"draining"})", record);
        }
        co_return co_await send_json(200, R"({"status":"ready"})", record);
    }
    if (get && record.path == "/metrics" && worker_.shared.metrics != nullptr) {
        http::response<http::string_body> response{http::status::ok, 11};
        response.set(http::field::content_type, metrics::Metrics::kContentType);
        response.body() = worker_.shared.metrics->render();
        co_return co_await send_response(response, record);
    }
    if (record.path.starts_with("/admin/")) {
        const std::string& token = snapshot_->admin_token;
        const auto presented = routing::bearer_token(request[http::field::authorization]);
        if (!token.empty() && !routing::constant_time_equal(presented, token)) {
            co_return co_await send_error(errc::unauthorized, "missing or wrong admin token",
                                          record, false);
        }
        if (record.path == "/admin/reload" && request.method() == http::verb::post) {
            co_return co_await reload(record);
        }
        if (worker_.shared.shadow != nullptr && record.path.starts_with("/admin/routes")) {
            co_return co_await handle_routes_admin(request, record);
        }
    }
    co_return co_await send_error(errc::not_found, "no such admin path", record, false);
}

/// The value of query parameter `name` in a request target, or "".
std::string_view query_parameter(std::string_view target, std::string_view name) {
    const auto question = target.find('?');
    if (question == std::string_view::npos) return {};
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return {};
}

/// GET /admin/routes, GET /admin/routes/NAME/verdicts?limit=N,
/// POST /admin/routes/NAME/{promote,rollback,pin,unpin}.
asio::awaitable<bool> Session::handle_routes_admin(http::request<http::string_body>& request,
                                                   RequestRecord& record) {
    ShadowRuntime& shadow = *worker_.shared.shadow;
    const bool get = request.method() == http::verb::get;
    const std::string_view path = record.path;
    if (path == "/admin/routes") {
        if (!get) co_return co_await send_error(errc::method_not_allowed, "use GET", record, false);
        co_return co_await send_json(200, shadow.routes_json(), record);
    }
    constexpr std::string_view kPrefix = "/admin/routes/";
    const std::string_view rest = path.substr(kPrefix.size());
    const auto slash = rest.rfind('/');
    if (slash == std::string_view::npos) {
        co_return co_await send_error(errc::not_found, "no such admin path", record, false);
    }
    const std::string name(rest.substr(0, slash));
    const std::string_view action = rest.substr(slash + 1);
    if (action == "verdicts" && get) {
        std::size_t limit = 50;
        const auto text = query_parameter(std::string_view(request.target()), "limit");
        if (!text.empty()) {
            std::size_t parsed = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
            if (ec != std::errc() || end != text.data() + text.size() || parsed == 0) {
                co_return co_await send_error(errc::invalid_request, "limit must be a positive integer",
                                              record, false);
            }
            limit = std::min<std::size_t>(parsed, 10000);
        }
        const auto json = shadow.verdicts_json(name, limit);
        if (!json) co_return co_await send_error(errc::not_found, "unknown route", record, false);
        co_return co_await send_json(200, *json, record);
    }
    if (request.method() != http::verb::post) {
        co_return co_await send_error(errc::not_found, "no such admin path", record, false);
    }
    std::optional<ShadowRuntime::Command> command;
    if (action == "promote") command = ShadowRuntime::Command::promote;
    if (action == "rollback") command = ShadowRuntime::Command::rollback;
    if (action == "unpin") command = ShadowRuntime::Command::unpin;
    if (action == "pin") {
        rapidjson::Document body;
        const bool valid = routing::parse_json_input(request.body(), body) && body.IsObject() &&
                           body.HasMember("target") && body["target"].IsString();
        const std::string_view side = valid ? body["target"].GetString() : "";
        if (side == "primary") command = ShadowRuntime::Command::pin_primary;
        if (side == "candidate") command = ShadowRuntime::Command::pin_candidate;
        if (!command) {
            co_return co_await send_error(
                errc::invalid_request, R"(pin needs {"target": "primary" or "candidate"})", record,
                false);
        }
    }
    if (!command) co_return co_await send_error(errc::not_found, "no such admin path", record, false);
    const auto result = shadow.command(name, *command);
    if (!result.known_route) {
        co_return co_await send_error(errc::not_found, "unknown route", record, false);
    }
    if (result.refused) {
        co_return co_await send_error(errc::conflict,
                                      "refused by the route's mode or pin (see its JSON)", record,
                                      false);
    }
    co_return co_await send_json(200, result.json, record);
}

// ---------------------------------------------------------------------------------------
// API listener

asio::awaitable<bool> Session::handle_api(http::request<http::string_body>& request,
                                          RequestRecord& record) {
    static constexpr std::string_view kProxied[] = {"/v1/chat/completions", "/v1/completions",
                                                    "/v1/embeddings"};
    if (!authenticate(request, record)) {
        co_return co_await send_error(errc::unauthorized, "invalid API key", record, false);
    }
    if (record.path == "/v1/models") {
        if (request.method() != http::verb::get) {
            co_return co_await send_error(errc::method_not_allowed, "use GET", record, false);
        }
        co_return co_await send_json(200, snapshot_->models_json, record);
    }
    for (const std::string_view path : kProxied) {
        if (record.path != path) continue;
        if (request.method() != http::verb::post) {
            co_return co_await send_error(errc::method_not_allowed, "use POST", record, false);
        }
        co_return co_await proxy(request, path.substr(3), record);  // drop "/v1"
    }
    co_return co_await send_error(errc::not_found, "unknown path " + record.path, record, false);
}

/// Client keys (`keys:`), as `Authorization: Bearer` or `x-api-key`. The key's name, never
/// the key, goes on to routing and the log.
bool Session::authenticate(const http::request<http::string_body>& request,
                           RequestRecord& record) {
    const auto& keys = *snapshot_->keys;
    if (!keys.enabled()) return true;
    std::string_view presented = routing::bearer_token(request[http::field::authorization]);
    if (presented.empty()) presented = request["x-api-key"];
    const auto name = keys.authenticate(presented);
    if (!name) return false;
    record.key_name = std::string(*name);
    return true;
}

asio::awaitable<bool> Session::proxy(http::request<http::string_body>& request,
                                     std::string_view suffix, RequestRecord& record) {
    rapidjson::Document document;
    // Bounded depth (the body is re-serialised recursively when the model changes) and no
    // duplicate keys (turnout and the upstream must read the same `model`).
    const auto parsed = routing::parse_json_input(request.body(), document);
    if (!parsed || !document.IsObject()) {
        const std::string reason =
            parsed ? "request body is not a JSON object"
                   : "request body is not acceptable: " + std::string(routing::describe(parsed.error));
        log_event(gateway_log(), spdlog::level::warn, "rejected request body",
                  {{"request_id", record.request_id}, {"reason", reason}});
        co_return co_await send_error(errc::invalid_json, reason, record, false);
    }
    const auto model_member = document.FindMember("model");
    if (model_member == document.MemberEnd() || !model_member->value.IsString()) {
        co_return co_await send_error(errc::missing_model, "request has no string 'model'",
                                      record, false);
    }
    const std::string_view model(model_member->value.GetString(),
                                 model_member->value.GetStringLength());
    const auto stream_member = document.FindMember("stream");
    record.stream = stream_member != document.MemberEnd() && stream_member->value.IsBool() &&
                    stream_member->value.GetBool();
    if (record.stream && document.HasMember("stream_options") &&
        document["stream_options"].IsObject() &&
        document["stream_options"].HasMember("include_usage") &&
        document["stream_options"]["include_usage"].IsBool()) {
        record.include_usage = document["stream_options"]["include_usage"].GetBool();
    }

    std::vector<std::pair<std::string_view, std::string_view>> headers;
    for (const auto& field : request) headers.emplace_back(field.name_string(), field.value());
    routing::RequestFacts facts;
    facts.model = model;
    facts.request_id = record.request_id;
    facts.request_id_from_client = record.request_id_from_client;
    facts.key_name = record.key_name;
    facts.headers = &headers;
    const auto view = worker_.shared.shadow ? worker_.shared.shadow->view() : nullptr;
    static const routing::RouteStates kNoStates;
    const auto decision = snapshot_->routes->decide(facts, view ? view->states : kNoStates);
    if (!decision) {
        co_return co_await send_error(errc::model_not_found,
                                      "no route for model '" + std::string(model) + "'", record,
                                      false);
    }
    const routing::RouteConfig& route = *decision->route;
    record.route = route.name;
    record.serving_candidate = decision->serving_candidate;
    record.decided_target = decision->target.provider + "/" + decision->target.model;
    std::shared_ptr<RouteChannel> channel;
    if (view) {
        const auto found = view->channels.find(route.name);
        if (found != view->channels.end()) channel = found->second;
    }
    if (channel && suffix == "/chat/completions") {
        const double rate = channel->mirror_rate.load();
        record.capture = rate > 0 && routing::sampled(record.request_id, rate, "shadow:" + route.name);
        if (record.capture && request.body().size() > kMaxShadowBytes) {
            record.capture = false;
            channel->dropped.fetch_add(1);
        }
    }

    std::vector<routing::TargetConfig> chain{decision->target};
    chain.insert(chain.end(), decision->fallbacks.begin(), decision->fallbacks.end());
    const auto route_deadline = record.start + route.timeout;
    Attempt last;
    last.failure = UpstreamFailure::timeout;  // what remains when the deadline stops us first
    for (const auto& target : chain) {
        for (std::uint32_t retry = 0; retry <= route.retries.attempts; ++retry) {
            if (retry > 0) {
                // Exponential backoff with full jitter, never past the route's deadline.
                thread_local std::mt19937_64 rng{std::random_device{}()};
                const auto cap = route.retries.backoff * (1u << std::min(retry - 1, 10u));
                const auto delay = Duration(std::uniform_int_distribution<std::int64_t>(
                    cap.count() / 2, std::max<std::int64_t>(cap.count(), 1))(rng));
                if (Clock::now() + delay >= route_deadline) break;
                asio::steady_timer pause(stream_.get_executor(), delay);
                co_await pause.async_wait(kToken);
            }
            if (Clock::now() >= route_deadline) break;
            last = co_await attempt(request, document, route, target, suffix, route_deadline,
                                   record);
            if (last.result == Attempt::Result::delivered || last.circuit_open) break;
        }
        if (last.result == Attempt::Result::delivered) break;
    }
    const bool keep = last.result == Attempt::Result::delivered
                          ? last.keep_alive
                          : co_await deliver_last_failure(std::move(last), record);
    if (channel) after_live_answer(request, *channel, record);
    co_return keep;
}

/// Feeds the route's controller (live outcomes) and hands a sampled pair to the shadow.
void Session::after_live_answer(const http::request<http::string_body>& request,
                                RouteChannel& channel, RequestRecord& record) {
    const bool failed = record.status >= 500 || !record.upstream_failure.empty();
    if (record.serving_candidate) {
        (failed ? channel.candidate_errors : channel.candidate_ok).fetch_add(1);
    } else {
        channel.primary_requests.fetch_add(1);
    }
    if (record.capture_skipped) channel.dropped.fetch_add(1);
    // Only answers that succeeded, arrived whole, were not too big to keep, and came from the
    // side the route chose (a fallback's answer is no evidence about primary or candidate).
    if (!record.capture || record.status != 200 || record.client_gone || failed ||
        record.target != record.decided_target) {
        return;
    }
    ShadowJob job;
    job.route = record.route;
    job.request_id = record.request_id;
    job.request_body = request.body();
    job.served_by_candidate = record.serving_candidate;
    job.live_body = std::move(record.captured_body);
    job.live_stream_payloads = std::move(record.captured_payloads);
    job.live_latency_ms = seconds_between(record.start, Clock::now()) * 1000.0;
    job.live_ttft_ms =
        record.first_byte ? seconds_between(record.start, *record.first_byte) * 1000.0 : 0.0;
    job.live_input_tokens = record.input_tokens;
    job.live_output_tokens = record.output_tokens;
    worker_.shared.shadow->offer(std::move(job));
}

/// Nothing answered well: pass the last upstream answer on (a 429 keeps its retry-after),
/// or 502/504 from the gateway itself.
asio::awaitable<bool> Session::deliver_last_failure(Attempt last, RequestRecord& record) {
    if (last.answer) co_return co_await send_response(*last.answer, record);
    if (last.circuit_open) {
        co_return co_await send_unavailable(
            errc::circuit_open, "upstream circuit open after repeated failures; retry later",
            last.retry_after, record);
    }
    if (last.failure == UpstreamFailure::timeout) {
        co_return co_await send_error(errc::upstream_timeout, "upstream timed out", record,
                                      false);
    }
    co_return co_await send_error(
        errc::upstream_unavailable,
        "upstream unavailable (" + std::string(to_string(last.failure)) + ")", record, false);
}

asio::awaitable<Attempt> Session::attempt(const http::request<http::string_body>& request,
                                          const rapidjson::Document& document,
                                          const routing::RouteConfig& route_config,
                                          const routing::TargetConfig& target,
                                          std::string_view suffix,
                                          Clock::time_point route_deadline,
                                          RequestRecord& record) {
    ++record.attempts;
    record.upstream_failure = {};  // this attempt's outcome, not an earlier one's
    const routing::ProviderConfig* provider = config().find_provider(target.provider);
    record.target = target.provider + "/" + target.model;
    // The primary's price is the baseline the cost saving is measured against.
    const auto* primary_provider =
        config().find_provider(routing::serving_target(route_config).provider);
    record.metrics = worker_.target_metrics(record.route, target, provider->price,
                                            primary_provider->price);
    Attempt outcome;
    outcome.result = Attempt::Result::delivered;
    if (provider->kind == routing::ProviderKind::anthropic && suffix != "/chat/completions") {
        outcome.keep_alive = co_await send_error(
            errc::unsupported, "anthropic providers serve only /v1/chat/completions", record,
            false);
        co_return outcome;
    }
    std::string error;
    std::string body = upstream_body(request.body(), document, target, *provider, error);
    if (!error.empty()) {
        outcome.keep_alive = co_await send_error(errc::invalid_request, error, record, false);
        co_return outcome;
    }
    const std::shared_ptr<CircuitBreaker> breaker = worker_.shared.breakers.of(*provider);
    if (breaker->admit(Clock::now()) == CircuitBreaker::Admission::rejected) {
        outcome.result = Attempt::Result::failed;
        outcome.circuit_open = true;
        outcome.retry_after = breaker->retry_after(Clock::now());
        record.upstream_failure = "circuit_open";
        if (record.metrics) record.metrics->upstream_error(metrics::UpstreamErrorKind::circuit_open);
        // At debug: under an open circuit every request would log it (the access log has it).
        log_event(gateway_log(), spdlog::level::debug, "upstream attempt skipped: circuit open",
                  {{"request_id", record.request_id},
                   {"route", record.route},
                   {"target", record.target}});
        co_return outcome;
    }
    const auto deadline = std::min(route_deadline, Clock::now() + provider->timeout);
    std::shared_ptr<UpstreamPool> pool = worker_.pool_for(*snapshot_, *provider);
    const auto credential = snapshot_->provider_auth.find(provider->name);
    auto upstream_request = make_upstream_request(
        &request, *provider, target, suffix, std::move(body),
        credential == snapshot_->provider_auth.end() ? std::string_view() : credential->second,
        record.request_id);
    const auto upstream_start = Clock::now();
    // A non-streamed answer's head comes only after the whole generation: the deadline alone
    // bounds it. A stream's head (its first token) must come within first_byte_timeout.
    const auto head_deadline =
        record.stream ? Clock::now() + provider->first_byte_timeout : deadline;
    HeadExchange exchange = co_await exchange_head(pool, &upstream_request, deadline, head_deadline);
    // The provider's health for the breaker: it answered, and not with a 5xx. (A 429 is its
    // rate limit, not ill health; a stream that breaks later already had its head.)
    if (exchange.ec || exchange.head->get().result_int() >= 500) {
        if (breaker->record_failure(Clock::now())) {
            log_event(gateway_log(), spdlog::level::warn, "circuit opened",
                      {{"provider", provider->name},
                       {"failures", std::int64_t{provider->circuit_breaker.failures}},
                       {"cooldown_ms", std::int64_t{provider->circuit_breaker.cooldown.count()}}});
        }
    } else {
        breaker->record_success();
    }
    if (exchange.ec) {
        const error_code ec = exchange.ec;
        record.upstream_time += Clock::now() - upstream_start;
        outcome.result = Attempt::Result::failed;
        outcome.failure = classify_upstream_error(ec);
        record.upstream_failure = to_string(outcome.failure);
        if (record.metrics) record.metrics->upstream_error(metrics_kind(outcome.failure));
        log_event(gateway_log(), spdlog::level::warn, "upstream attempt failed",
                  {{"request_id", record.request_id},
                   {"route", record.route},
                   {"target", record.target},
                   {"attempt", static_cast<std::int64_t>(record.attempts)},
                   {"kind", to_string(outcome.failure)},
                   {"error", ec.message()}});
        co_return outcome;
    }
    auto& head = *exchange.head;
    const auto content_type = head.get()[http::field::content_type];
    if (head.get().result_int() == 200 && content_type.substr(0, 17) == "text/event-stream") {
        outcome.keep_alive = co_await relay_stream(head, std::move(exchange.connection),
                                                   std::move(pool), provider, deadline, record);
        record.upstream_time += Clock::now() - upstream_start;
        co_return outcome;
    }
    outcome = co_await read_answer(head, std::move(exchange.connection), std::move(pool),
                                   provider, deadline, record);
    record.upstream_time += Clock::now() - upstream_start;
    co_return outcome;
}

/// Reads a whole (non-streamed) answer. Success and client errors are delivered at once;
/// a 5xx or 429 is kept for the caller, which may try elsewhere or pass it on.
asio::awaitable<Attempt> Session::read_answer(http::response_parser<http::empty_body>& head,
                                              ConnectionPtr connection,
                                              std::shared_ptr<UpstreamPool> pool,
                                              const routing::ProviderConfig* provider,
                                              Clock::time_point deadline,
                                              RequestRecord& record) {
    Attempt outcome;
    http::response_parser<http::string_body> parser{std::move(head)};
    parser.body_limit(kMaxUpstreamBody);
    connection->tcp().expires_at(deadline);
    auto [ec, n] = co_await connection->read_all(parser);
    if (ec) {
        pool->release(std::move(connection), false);
        outcome.failure = classify_upstream_error(ec);
        record.upstream_failure = to_string(outcome.failure);
        if (record.metrics) record.metrics->upstream_error(metrics_kind(outcome.failure));
        co_return outcome;
    }
    pool->release(std::move(connection), parser.keep_alive());

    auto upstream = parser.release();
    http::response<http::string_body> response;
    copy_status(upstream, response);
    copy_response_headers(upstream, response);
    response.body() = std::move(upstream.body());
    const unsigned status = response.result_int();
    const bool anthropic = provider->kind == routing::ProviderKind::anthropic;
    if (anthropic && status == 200) {
        auto translated =
            anthropic::translate_response(response.body(), record.request_id,
                                          std::string_view(record.target).substr(
                                              record.target.find('/') + 1));
        if (!translated.error.empty()) {
            outcome.failure = UpstreamFailure::protocol;
            record.upstream_failure = to_string(outcome.failure);
            co_return outcome;
        }
        response.body() = std::move(translated.body);
        record.input_tokens = translated.usage.input_tokens +
                              translated.usage.cache_read_input_tokens +
                              translated.usage.cache_creation_input_tokens;
        record.output_tokens = translated.usage.output_tokens;
        record.speed = translated.speed;
        response.set(http::field::content_type, "application/json");
    } else if (anthropic) {
        response.body() = anthropic::translate_error(response.body(), status);
        response.set(http::field::content_type, "application/json");
    } else if (status == 200) {
        rapidjson::Document answer;
        if (routing::parse_json_input(response.body(), answer, kUpstreamJson)) {
            read_openai_usage(answer, record);
        }
    }
    if (retryable_status(status)) {
        if (record.metrics) {
            record.metrics->upstream_error(status == 429 ? metrics::UpstreamErrorKind::status_429
                                                         : metrics::UpstreamErrorKind::status_5xx);
        }
        log_event(gateway_log(), spdlog::level::warn, "upstream attempt failed",
                  {{"request_id", record.request_id},
                   {"route", record.route},
                   {"target", record.target},
                   {"attempt", static_cast<std::int64_t>(record.attempts)},
                   {"status", static_cast<std::int64_t>(status)}});
        outcome.result = Attempt::Result::upstream_status;
        outcome.answer = std::move(response);
        co_return outcome;
    }
    outcome.result = Attempt::Result::delivered;
    if (record.capture && status == 200) {
        if (response.body().size() <= kMaxShadowBytes) {
            record.captured_body = response.body();
        } else {
            record.capture = false;
            record.capture_skipped = true;
        }
    }
    outcome.keep_alive = co_await send_response(response, record);
    co_return outcome;
}

asio::awaitable<bool> Session::write_chunk(std::string_view data, RequestRecord& record) {
    stream_.expires_after(config().limits.client_timeout);  // a client too slow to read
    const asio::const_buffer bytes(data.data(), data.size());
    // HTTP/1.0 has no chunked coding: the body runs until the connection closes.
    auto [ec, n] = http10_ ? co_await asio::async_write(stream_, bytes, kToken)
                           : co_await asio::async_write(stream_, http::make_chunk(bytes), kToken);
    if (ec) co_return false;
    record.bytes_out += data.size();
    if (!record.first_byte) record.first_byte = Clock::now();
    co_return true;
}

/// The end of a streamed body: the last chunk, or nothing for HTTP/1.0 (the close ends it).
asio::awaitable<bool> Session::end_stream_body() {
    if (http10_) co_return true;
    stream_.expires_after(config().limits.client_timeout);
    auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk_last(), kToken);
    co_return !ec;
}

asio::awaitable<bool> Session::relay_stream(http::response_parser<http::empty_body>& head,
                                            ConnectionPtr connection,
                                            std::shared_ptr<UpstreamPool> pool,
                                            const routing::ProviderConfig* provider,
                                            Clock::time_point deadline, RequestRecord& record) {
    http::response_parser<http::buffer_body> parser{std::move(head)};
    parser.body_limit(boost::none);  // bounded by the deadline instead

    http::response<http::empty_body> response;
    copy_status(parser.get(), response);
    copy_response_headers(parser.get(), response);
    add_turnout_headers(response, record);
    response.set(http::field::cache_control, "no-cache");
    if (http10_) keep_alive_ = false;  // the close delimits the body
    response.keep_alive(keep_alive());
    response.chunked(!http10_);
    record.status = response.result_int();
    http::response_serializer<http::empty_body> serializer{response};
    stream_.expires_after(config().limits.client_timeout);
    auto [ec, n] = co_await http::async_write_header(stream_, serializer, kToken);
    if (ec) {
        pool->release(std::move(connection), false);
        record.client_gone = true;
        co_return false;
    }

    std::optional<anthropic::StreamTranslator> translator;
    if (provider->kind == routing::ProviderKind::anthropic) {
        translator.emplace(record.request_id,
                           std::string(std::string_view(record.target)
                                           .substr(record.target.find('/') + 1)),
                           record.include_usage);
    }
    using namespace asio::experimental::awaitable_operators;
    RelayState state{connection.get(), &parser, translator ? &*translator : nullptr,
                     deadline, provider->stream_idle_timeout, std::nullopt, false, false};
    co_await (pump_events(&state, &record) || watch_client(&state));
    if (translator) {
        const auto& usage = translator->usage();
        record.input_tokens = usage.input_tokens + usage.cache_read_input_tokens +
                              usage.cache_creation_input_tokens;
        record.output_tokens = usage.output_tokens;
        record.speed = translator->speed();
    }

    if (state.client_gone) {
        record.client_gone = true;
        pool->release(std::move(connection), false);
        co_return false;
    }
    if (state.translator_failed) {  // the error frame is out already
        pool->release(std::move(connection), false);
        co_await end_stream_body();
        co_return false;
    }
    if (state.failure) {
        pool->release(std::move(connection), false);
        record.upstream_failure = to_string(*state.failure);
        if (record.metrics) record.metrics->upstream_error(metrics_kind(*state.failure));
        log_event(gateway_log(), spdlog::level::warn, "upstream stream failed",
                  {{"request_id", record.request_id},
                   {"target", record.target},
                   {"kind", to_string(*state.failure)}});
        const std::string frame =
            "data: " +
            openai_error_body(errc::upstream_stream_failed,
                              "upstream stream failed (" +
                                  std::string(to_string(*state.failure)) + ")") +
            "\n\n";
        if (co_await write_chunk(frame, record)) co_await end_stream_body();
        co_return false;  // the client must not reuse a connection after a broken stream
    }
    pool->release(std::move(connection), parser.keep_alive());
    co_return co_await end_stream_body() && !http10_;
}

/// Relays whole SSE events as they complete, each batch in its own chunk, never the whole
/// body; Anthropic events are translated on the way.
asio::awaitable<void> Session::pump_events(RelayState* state, RequestRecord* record) {
    co_await asio::this_coro::throw_if_cancelled(false);
    SseSplitter splitter(kMaxSseEvent);
    std::array<char, kReadChunk> chunk;
    std::string events;
    auto& parser = *state->parser;
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        state->upstream->tcp().expires_at(
            std::min(state->deadline, Clock::now() + state->idle_timeout));
        auto [ec, n] = co_await state->upstream->read_some(parser);
        if (ec == http::error::need_buffer) ec = {};
        if (state->client_gone) co_return;
        if (ec) {
            state->failure = classify_upstream_error(ec);
            co_return;
        }
        splitter.feed({chunk.data(), chunk.size() - parser.get().body().size});
        events.clear();
        while (auto event = splitter.next_event()) {
            if (state->translator != nullptr) {
                events += state->translator->on_event(*event);
                if (state->translator->failed()) break;
            } else {
                if (record->include_usage && event->find("\"usage\"") != std::string::npos) {
                    rapidjson::Document chunk_json;
                    const std::string data = sse_event_data(*event);
                    if (routing::parse_json_input(data, chunk_json, kUpstreamJson)) {
                        read_openai_usage(chunk_json, *record);
                    }
                }
                events += *event;
            }
        }
        if (splitter.overflowed()) {
            state->failure = UpstreamFailure::protocol;
            co_return;
        }
        if (record->capture) capture_events(events, *record);
        if (!events.empty() && !co_await write_chunk(events, *record)) {
            state->client_gone = true;
            co_return;
        }
        if (state->translator != nullptr && state->translator->failed()) {
            state->translator_failed = true;
            co_return;
        }
    }
}

/// Notices a client that hangs up while the upstream is still thinking, and closes the
/// upstream so the provider stops generating (and billing).
asio::awaitable<void> Session::watch_client(RelayState* state) {
    co_await asio::this_coro::throw_if_cancelled(false);
    auto [ec] = co_await stream_.socket().async_wait(tcp::socket::wait_read, kToken);
    if (ec == asio::error::operation_aborted) co_return;  // the relay finished first
    char byte = 0;
    const ssize_t n = ec ? 0 : ::recv(stream_.socket().native_handle(), &byte, 1,
                                      MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
        // A pipelined next request, not a hang-up: stay out of the relay's way.
        asio::steady_timer forever(stream_.get_executor(), Clock::time_point::max());
        co_await forever.async_wait(kToken);
        co_return;
    }
    state->client_gone = true;
    state->upstream->close();
}

/// The access-log line and the request's metrics.
void Session::finish_request(RequestRecord& record) const {
    const auto now = Clock::now();
    const double duration = seconds_between(record.start, now);
    const double ttfb = record.first_byte ? seconds_between(record.start, *record.first_byte)
                                          : -1.0;
    const double overhead =
        std::max(0.0, duration - std::chrono::duration<double>(record.upstream_time).count());
    if (listener_ == Listener::api && worker_.shared.metrics != nullptr) {
        if (!record.metrics) record.metrics = worker_.unmatched_metrics();
        record.metrics->request(record.status, duration);
        if (ttfb >= 0) record.metrics->time_to_first_token(ttfb);
        record.metrics->tokens(record.input_tokens, record.output_tokens);
        record.metrics->overhead(overhead);
    }
    log_event(access_log(), spdlog::level::info, "request",
              {{"request_id", record.request_id},
               {"listener", listener_ == Listener::api ? "api" : "admin"},
               {"method", record.method},
               {"path", record.path},
               {"key", record.key_name},
               {"route", record.route},
               {"target", record.target},
               {"status", static_cast<std::int64_t>(record.status)},
               {"attempts", static_cast<std::int64_t>(record.attempts)},
               {"bytes_in", static_cast<std::int64_t>(record.bytes_in)},
               {"bytes_out", static_cast<std::int64_t>(record.bytes_out)},
               {"input_tokens", static_cast<std::int64_t>(record.input_tokens)},
               {"output_tokens", static_cast<std::int64_t>(record.output_tokens)},
               {"duration_ms", duration * 1000.0},
               {"ttfb_ms", ttfb * 1000.0},
               {"overhead_ms", overhead * 1000.0},
               {"stream", record.stream},
               {"client_gone", record.client_gone},
               {"upstream_failure", record.upstream_failure},
               {"speed", record.speed ? std::string_view(*record.speed) : std::string_view()}});
}

}  // namespace

asio::awaitable<void> run_session(Worker* worker, tcp::socket socket, Listener listener) {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    {
        Session session(*worker, std::move(socket), listener);
        co_await session.run();
    }
    if (listener == Listener::api) --worker->connections;
    --worker->shared.open_connections;
    if (worker->accept_waiter != nullptr) worker->accept_waiter->cancel();
}

}  // namespace turnout::gateway
