// The gateway's data plane: listeners, client sessions, the proxy to upstreams, the SSE relay,
// the admin listener and the graceful drain.
//
// Threading: one io_context per worker thread, each with its own SO_REUSEPORT acceptor, its
// own upstream pools and its own session registry. A connection lives on one thread from
// accept to close, so sessions need no strands and pools no locks; the kernel spreads new
// connections over the acceptors. Only the drain flag and the connection count are shared.

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <list>
#include <map>
#include <random>
#include <thread>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "gateway/errors.hpp"
#include "gateway/framing.hpp"
#include "gateway/hop_headers.hpp"
#include "gateway/logging.hpp"
#include "gateway/server.hpp"
#include "gateway/sse.hpp"
#include "gateway/upstream.hpp"
#include "routing/route_table.hpp"

namespace turnout::gateway {
namespace {

using tcp = asio::ip::tcp;
using routing::Config;
using routing::Duration;
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kRequestIdHeader = "x-request-id";
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::uint64_t kMaxUpstreamBody = 64ull << 20;  // non-streamed answers, read whole
constexpr std::size_t kMaxSseEvent = 4u << 20;

double ms_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
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

std::string render_models(const Config& config) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    writer.StartObject();
    writer.Key("object");
    writer.String("list");
    writer.Key("data");
    writer.StartArray();
    for (const std::string& name : routing::listed_model_names(config)) {
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

/// What the upstream gets instead of the client's credentials, resolved once at start-up.
std::map<std::string, std::string, std::less<>> resolve_provider_auth(const Config& config) {
    std::map<std::string, std::string, std::less<>> auth;
    for (const auto& provider : config.providers) {
        if (provider.api_key_env.empty()) continue;
        const char* key = std::getenv(provider.api_key_env.c_str());
        if (key == nullptr || *key == '\0') {
            throw std::runtime_error("environment variable " + provider.api_key_env +
                                     " (api_key_env of provider " + provider.name + ") is unset");
        }
        auth[provider.name] = provider.kind == routing::ProviderKind::openai
                                  ? std::string("Bearer ") + key
                                  : std::string(key);
    }
    return auth;
}

/// Process-wide state shared by all workers; everything else is per worker.
struct Shared {
    std::shared_ptr<const Config> config;
    std::map<std::string, std::string, std::less<>> provider_auth;  // secrets: never logged
    std::map<std::string, std::shared_ptr<asio::ssl::context>, std::less<>> tls_contexts;
    std::string models_json;
    std::atomic<bool> draining{false};
    std::atomic<int> open_connections{0};
    unsigned threads = 1;
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
    asio::steady_timer* accept_waiter = nullptr;
    std::thread thread;
    asio::io_context io{1};
    std::optional<tcp::acceptor> api_acceptor;
    std::optional<tcp::acceptor> admin_acceptor;
    std::map<std::string, std::unique_ptr<UpstreamPool>, std::less<>> pools;

    void begin_drain() {
        error_code ignored;
        if (api_acceptor) api_acceptor->close(ignored);
        if (admin_acceptor) admin_acceptor->close(ignored);
        for (auto& entry : sessions) {
            if (entry.idle) entry.stream->socket().close(ignored);
        }
    }
};

enum class Listener { api, admin };

/// Per-request facts for the access log and the x-turnout-* headers.
struct RequestRecord {
    Clock::time_point start = Clock::now();
    std::optional<Clock::time_point> first_byte;
    std::string request_id;
    std::string method;
    std::string path;
    std::string route;
    std::string target;
    unsigned status = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    bool stream = false;
    bool client_gone = false;
    std::string_view upstream_failure;
};

/// Shared between the SSE pump and the client watcher of one streamed answer.
struct RelayState {
    UpstreamConnection* upstream;
    http::response_parser<http::buffer_body>* parser;
    Clock::time_point deadline;
    Duration idle_timeout;
    std::optional<UpstreamFailure> failure;
    bool client_gone = false;
};

class Session {
public:
    Session(Worker& worker, tcp::socket socket, Listener listener)
        : worker_(worker),
          config_(worker.shared.config),
          stream_(std::move(socket)),
          listener_(listener),
          request_timer_(stream_.get_executor()) {
        entry_ = worker_.sessions.insert(worker_.sessions.end(), {&stream_, true});
    }
    ~Session() { worker_.sessions.erase(entry_); }

    asio::awaitable<void> run();

private:
    asio::awaitable<bool> serve_one();
    asio::awaitable<bool> read_request(http::request_parser<http::string_body>& parser,
                                       RequestRecord& record);
    asio::awaitable<bool> handle_api(http::request<http::string_body>& request,
                                     RequestRecord& record);
    asio::awaitable<bool> handle_admin(http::request<http::string_body>& request,
                                       RequestRecord& record);
    asio::awaitable<bool> proxy(http::request<http::string_body>& request, std::string_view suffix,
                                RequestRecord& record);
    asio::awaitable<bool> forward(http::request<http::string_body> upstream_request,
                                  UpstreamPool* pool, Clock::time_point deadline,
                                  RequestRecord& record);
    asio::awaitable<bool> relay_buffered(http::response_parser<http::empty_body>& head,
                                         ConnectionPtr connection, UpstreamPool* pool,
                                         Clock::time_point deadline, RequestRecord& record);
    asio::awaitable<bool> relay_stream(http::response_parser<http::empty_body>& head,
                                       ConnectionPtr connection, UpstreamPool* pool,
                                       Clock::time_point deadline, RequestRecord& record);
    asio::awaitable<void> pump_events(RelayState* state, RequestRecord* record);
    asio::awaitable<void> watch_client(RelayState* state);
    asio::awaitable<bool> send_error(errc code, std::string_view message, RequestRecord& record,
                                     bool close);
    asio::awaitable<bool> send_json(unsigned status, std::string body, RequestRecord& record);
    asio::awaitable<bool> write_chunk(std::string_view data, RequestRecord& record);
    void add_turnout_headers(http::fields& fields, const RequestRecord& record) const;
    void start_request_timer();
    void write_access_log(const RequestRecord& record) const;
    bool keep_alive() const { return keep_alive_ && !worker_.shared.draining; }

    Worker& worker_;
    std::shared_ptr<const Config> config_;  // the config this connection started on
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    Listener listener_;
    asio::steady_timer request_timer_;
    bool request_timed_out_ = false;
    bool keep_alive_ = true;
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
            const auto& limits = config_->limits;
            stream_.expires_after(first_request ? limits.client_timeout : limits.keepalive_timeout);
            auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kReadChunk), kToken);
            if (ec) break;
            buffer_.commit(n);
        }
        stream_.expires_never();
        entry_->idle = false;
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
    request_timed_out_ = false;
    request_timer_.expires_after(config_->limits.client_timeout);
    request_timer_.async_wait([this](const error_code& ec) {
        if (ec) return;  // cancelled: the session may already be gone, touch nothing
        request_timed_out_ = true;
        error_code ignored;
        stream_.socket().cancel(ignored);
    });
}

asio::awaitable<bool> Session::serve_one() {
    RequestRecord record;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(config_->limits.max_header_bytes));
    parser.body_limit(config_->limits.max_body_bytes);
    start_request_timer();
    const bool complete = co_await read_request(parser, record);
    request_timer_.cancel();
    if (!complete) {
        if (record.status != 0) write_access_log(record);
        co_return false;
    }
    auto& request = parser.get();
    keep_alive_ = request.keep_alive();
    const bool keep = listener_ == Listener::api ? co_await handle_api(request, record)
                                                  : co_await handle_admin(request, record);
    write_access_log(record);
    co_return keep && keep_alive();
}

/// Reads one request under the limits. False when the connection must close (an error
/// answer was sent when there was someone to send it to).
asio::awaitable<bool> Session::read_request(http::request_parser<http::string_body>& parser,
                                            RequestRecord& record) {
    auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser, kToken);
    if (!ec) {
        const auto& head = parser.get();
        record.method = std::string(head.method_string());
        record.path = std::string(head.target().substr(0, head.target().find('?')));
        const auto id = head[kRequestIdHeader];
        record.request_id = acceptable_request_id(id) ? std::string(id) : new_request_id();
        std::vector<HeaderView> fields;
        for (const auto& field : head) fields.emplace_back(field.name_string(), field.value());
        const FramingVerdict verdict = check_request_framing(head.version(), fields);
        if (!verdict.ok) {
            log_event(gateway_log(), spdlog::level::warn, "rejected request framing",
                      {{"request_id", record.request_id}, {"reason", verdict.reason}});
            co_await send_error(errc::bad_request, verdict.reason, record, true);
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
        record.bytes_in = parser.get().body().size();
        co_return true;
    }
    if (request_timed_out_) {
        co_await send_error(errc::request_timeout, "request not received in time", record, true);
    } else if (ec == http::error::header_limit) {
        co_await send_error(errc::headers_too_large, "request header block too large", record,
                            true);
    } else if (ec == http::error::body_limit) {
        co_await send_error(errc::request_too_large, "request body too large", record, true);
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

asio::awaitable<bool> Session::send_json(unsigned status, std::string body,
                                         RequestRecord& record) {
    http::response<http::string_body> response{static_cast<http::status>(status), 11};
    response.set(http::field::content_type, "application/json");
    add_turnout_headers(response, record);
    response.keep_alive(keep_alive());
    response.body() = std::move(body);
    response.prepare_payload();
    record.status = status;
    record.bytes_out = response.body().size();
    stream_.expires_after(config_->limits.client_timeout);
    auto [ec, n] = co_await http::async_write(stream_, response, kToken);
    if (!record.first_byte) record.first_byte = Clock::now();
    co_return !ec;
}

asio::awaitable<bool> Session::send_error(errc code, std::string_view message,
                                          RequestRecord& record, bool close) {
    if (close) keep_alive_ = false;
    const bool sent = co_await send_json(error_shape(code).status,
                                         openai_error_body(code, message), record);
    co_return sent && !close;
}

asio::awaitable<bool> Session::handle_admin(http::request<http::string_body>& request,
                                            RequestRecord& record) {
    if (request.method() != http::verb::get) {
        co_return co_await send_error(errc::method_not_allowed, "method not allowed", record, false);
    }
    if (record.path == "/healthz") co_return co_await send_json(200, R"({"status":"ok"})", record);
    if (record.path == "/readyz") {
        if (worker_.shared.draining) {
            co_return co_await send_json(503, R"({"status":"draining"})", record);
        }
        co_return co_await send_json(200, R"({"status":"ready"})", record);
    }
    co_return co_await send_error(errc::not_found, "no such admin path", record, false);
}

asio::awaitable<bool> Session::handle_api(http::request<http::string_body>& request,
                                          RequestRecord& record) {
    static constexpr std::string_view kProxied[] = {"/v1/chat/completions", "/v1/completions",
                                                    "/v1/embeddings"};
    if (record.path == "/v1/models") {
        if (request.method() != http::verb::get) {
            co_return co_await send_error(errc::method_not_allowed, "use GET", record, false);
        }
        co_return co_await send_json(200, worker_.shared.models_json, record);
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

/// The tokens of every Connection field of a message.
ConnectionTokens connection_tokens(const http::fields& fields) {
    ConnectionTokens tokens;
    const auto [begin, end] = fields.equal_range(http::field::connection);
    for (auto it = begin; it != end; ++it) tokens.add_connection_value(it->value());
    return tokens;
}

/// Builds the upstream request from the client's: end-to-end headers only, the provider's
/// credentials instead of the client's.
http::request<http::string_body> make_upstream_request(
    const http::request<http::string_body>& client, const routing::ProviderConfig& provider,
    std::string_view suffix, std::string body, const Shared& shared,
    const RequestRecord& record) {
    http::request<http::string_body> upstream{http::verb::post, provider.address.base_path +
                                                                    std::string(suffix), 11};
    const ConnectionTokens connection = connection_tokens(client);
    for (const auto& field : client) {
        if (forward_request_header(field.name_string(), connection)) {
            upstream.insert(field.name_string(), field.value());
        }
    }
    const auto& address = provider.address;
    const bool default_port = address.port == (address.tls ? 443 : 80);
    upstream.set(http::field::host,
                 default_port ? address.host : address.host + ":" + std::to_string(address.port));
    if (const auto auth = shared.provider_auth.find(provider.name);
        auth != shared.provider_auth.end()) {
        if (provider.kind == routing::ProviderKind::openai) {
            upstream.set(http::field::authorization, auth->second);
        } else {
            upstream.set("x-api-key", auth->second);
        }
    }
    if (provider.kind == routing::ProviderKind::anthropic) {
        upstream.set("anthropic-version", "2023-06-01");
    }
    for (const auto& [name, value] : provider.headers) upstream.set(name, value);
    upstream.set(kRequestIdHeader, record.request_id);
    if (upstream[http::field::content_type].empty()) {
        upstream.set(http::field::content_type, "application/json");
    }
    upstream.keep_alive(true);
    upstream.body() = std::move(body);
    upstream.prepare_payload();
    return upstream;
}

asio::awaitable<bool> Session::proxy(http::request<http::string_body>& request,
                                     std::string_view suffix, RequestRecord& record) {
    rapidjson::Document document;
    document.Parse(request.body().data(), request.body().size());
    if (document.HasParseError() || !document.IsObject()) {
        co_return co_await send_error(errc::invalid_json, "request body is not a JSON object",
                                      record, false);
    }
    const auto model_member = document.FindMember("model");
    if (model_member == document.MemberEnd() || !model_member->value.IsString()) {
        co_return co_await send_error(errc::missing_model, "request has no string 'model'",
                                      record, false);
    }
    const std::string model(model_member->value.GetString(),
                            model_member->value.GetStringLength());
    const auto stream_member = document.FindMember("stream");
    record.stream = stream_member != document.MemberEnd() && stream_member->value.IsBool() &&
                    stream_member->value.GetBool();

    const routing::RouteConfig* route = routing::find_route(*config_, model);
    if (route == nullptr) {
        co_return co_await send_error(errc::model_not_found,
                                      "no route for model '" + model + "'", record, false);
    }
    const routing::TargetConfig& target = routing::serving_target(*route);
    const routing::ProviderConfig* provider = config_->find_provider(target.provider);
    record.route = route->name;
    record.target = target.provider + "/" + target.model;
    if (provider->kind != routing::ProviderKind::openai) {
        co_return co_await send_error(errc::unsupported,
                                      "provider kind 'anthropic' is not served yet", record,
                                      false);
    }

    std::string body = std::move(request.body());
    if (model != target.model) {
        // Forwarded as is unless the model name must change.
        model_member->value.SetString(target.model.data(),
                                      static_cast<rapidjson::SizeType>(target.model.size()),
                                      document.GetAllocator());
        rapidjson::StringBuffer out;
        rapidjson::Writer<rapidjson::StringBuffer> writer(out);
        document.Accept(writer);
        body.assign(out.GetString(), out.GetSize());
    }
    const auto deadline = Clock::now() + std::min(route->timeout, provider->timeout);
    UpstreamPool* pool = worker_.pools.at(provider->name).get();
    co_return co_await forward(
        make_upstream_request(request, *provider, suffix, std::move(body), worker_.shared, record),
        pool, deadline, record);
}

asio::awaitable<bool> Session::forward(http::request<http::string_body> upstream_request,
                                       UpstreamPool* pool, Clock::time_point deadline,
                                       RequestRecord& record) {
    const auto& provider = pool->provider();
    auto acquired = co_await pool->acquire(deadline);
    error_code ec = acquired ? error_code{} : acquired.error();
    ConnectionPtr connection = acquired ? std::move(*acquired) : nullptr;
    std::optional<http::response_parser<http::empty_body>> head;
    head.emplace();
    // A reused keep-alive connection may have been closed by the upstream just now: one
    // retry on a fresh connection when nothing at all came back.
    for (int attempt = 0; connection && attempt < 2; ++attempt) {
        // A non-streamed answer's head comes only after the whole generation: the deadline
        // alone bounds it. A stream's head (its first token) must come within
        // first_byte_timeout.
        connection->tcp().expires_at(
            record.stream ? std::min(deadline, Clock::now() + provider.first_byte_timeout)
                          : deadline);
        std::size_t n = 0;
        std::tie(ec, n) = co_await connection->write(upstream_request);
        if (!ec) std::tie(ec, n) = co_await connection->read_header(*head);
        if (!ec) break;
        const bool stale = connection->reused && attempt == 0 &&
                           classify_upstream_error(ec) == UpstreamFailure::reset &&
                           connection->buffer().size() == 0;
        pool->release(std::move(connection), false);
        if (!stale) break;
        head.emplace();
        auto fresh = co_await pool->connect_new(deadline);
        if (!fresh) {
            ec = fresh.error();
            break;
        }
        connection = std::move(*fresh);
    }
    if (ec) {
        const UpstreamFailure failure = classify_upstream_error(ec);
        record.upstream_failure = to_string(failure);
        log_event(gateway_log(), spdlog::level::warn, "upstream request failed",
                  {{"request_id", record.request_id},
                   {"provider", provider.name},
                   {"kind", to_string(failure)},
                   {"error", ec.message()}});
        if (failure == UpstreamFailure::timeout) {
            co_return co_await send_error(errc::upstream_timeout,
                                          "upstream " + provider.name + " timed out", record,
                                          false);
        }
        co_return co_await send_error(errc::upstream_unavailable,
                                      "upstream " + provider.name + " unavailable (" +
                                          std::string(to_string(failure)) + ")",
                                      record, false);
    }
    const auto content_type = head->get()[http::field::content_type];
    if (content_type.substr(0, 17) == "text/event-stream") {
        co_return co_await relay_stream(*head, std::move(connection), pool, deadline, record);
    }
    co_return co_await relay_buffered(*head, std::move(connection), pool, deadline, record);
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

asio::awaitable<bool> Session::relay_buffered(http::response_parser<http::empty_body>& head,
                                              ConnectionPtr connection, UpstreamPool* pool,
                                              Clock::time_point deadline,
                                              RequestRecord& record) {
    http::response_parser<http::string_body> parser{std::move(head)};
    parser.body_limit(kMaxUpstreamBody);
    connection->tcp().expires_at(deadline);
    auto [ec, n] = co_await connection->read_all(parser);
    if (ec) {
        pool->release(std::move(connection), false);
        const UpstreamFailure failure = classify_upstream_error(ec);
        record.upstream_failure = to_string(failure);
        const errc code =
            failure == UpstreamFailure::timeout ? errc::upstream_timeout : errc::upstream_unavailable;
        co_return co_await send_error(code, "upstream answer incomplete: " + ec.message(), record,
                                      false);
    }
    const bool reusable = parser.keep_alive();
    pool->release(std::move(connection), reusable);

    auto upstream = parser.release();
    http::response<http::string_body> response{upstream.result(), 11};
    copy_response_headers(upstream, response);
    add_turnout_headers(response, record);
    response.keep_alive(keep_alive());
    response.body() = std::move(upstream.body());
    response.prepare_payload();
    record.status = response.result_int();
    record.bytes_out = response.body().size();
    stream_.expires_after(config_->limits.client_timeout);
    auto [write_ec, written] = co_await http::async_write(stream_, response, kToken);
    record.first_byte = Clock::now();
    co_return !write_ec;
}

asio::awaitable<bool> Session::write_chunk(std::string_view data, RequestRecord& record) {
    stream_.expires_after(config_->limits.client_timeout);  // a client too slow to read
    auto [ec, n] = co_await asio::async_write(
        stream_, http::make_chunk(asio::const_buffer(data.data(), data.size())), kToken);
    if (ec) co_return false;
    record.bytes_out += data.size();
    if (!record.first_byte) record.first_byte = Clock::now();
    co_return true;
}

asio::awaitable<bool> Session::relay_stream(http::response_parser<http::empty_body>& head,
                                            ConnectionPtr connection, UpstreamPool* pool,
                                            Clock::time_point deadline, RequestRecord& record) {
    http::response_parser<http::buffer_body> parser{std::move(head)};
    parser.body_limit(boost::none);  // bounded by the deadline instead

    http::response<http::empty_body> response{parser.get().result(), 11};
    copy_response_headers(parser.get(), response);
    add_turnout_headers(response, record);
    response.set(http::field::cache_control, "no-cache");
    response.keep_alive(keep_alive());
    response.chunked(true);
    record.status = response.result_int();
    http::response_serializer<http::empty_body> serializer{response};
    stream_.expires_after(config_->limits.client_timeout);
    auto [ec, n] = co_await http::async_write_header(stream_, serializer, kToken);
    if (ec) {
        pool->release(std::move(connection), false);
        record.client_gone = true;
        co_return false;
    }

    using namespace asio::experimental::awaitable_operators;
    RelayState state{connection.get(), &parser, deadline, pool->provider().stream_idle_timeout,
                     std::nullopt, false};
    co_await (pump_events(&state, &record) || watch_client(&state));

    if (state.client_gone) {
        record.client_gone = true;
        pool->release(std::move(connection), false);
        co_return false;
    }
    if (state.failure) {
        pool->release(std::move(connection), false);
        record.upstream_failure = to_string(*state.failure);
        log_event(gateway_log(), spdlog::level::warn, "upstream stream failed",
                  {{"request_id", record.request_id},
                   {"provider", pool->provider().name},
                   {"kind", to_string(*state.failure)}});
        const std::string frame =
            "data: " +
            openai_error_body(errc::upstream_stream_failed,
                              "upstream stream failed (" +
                                  std::string(to_string(*state.failure)) + ")") +
            "\n\n";
        if (co_await write_chunk(frame, record)) {
            co_await asio::async_write(stream_, http::make_chunk_last(), kToken);
        }
        co_return false;  // the client must not reuse a connection after a broken stream
    }
    pool->release(std::move(connection), parser.keep_alive());
    stream_.expires_after(config_->limits.client_timeout);
    auto [last_ec, last_n] = co_await asio::async_write(stream_, http::make_chunk_last(), kToken);
    co_return !last_ec;
}

/// Relays whole SSE events as they complete, each in its own chunk, never the whole body.
asio::awaitable<void> Session::pump_events(RelayState* state, RequestRecord* record) {
    co_await asio::this_coro::throw_if_cancelled(false);
    SseSplitter splitter(kMaxSseEvent);
    std::array<char, kReadChunk> chunk;
    std::string events;
    auto& parser = *state->parser;
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        state->upstream->tcp().expires_at(std::min(state->deadline, Clock::now() + state->idle_timeout));
        auto [ec, n] = co_await state->upstream->read_some(parser);
        if (ec == http::error::need_buffer) ec = {};
        if (state->client_gone) co_return;
        if (ec) {
            state->failure = classify_upstream_error(ec);
            co_return;
        }
        splitter.feed({chunk.data(), chunk.size() - parser.get().body().size});
        events.clear();
        while (auto event = splitter.next_event()) events += *event;
        if (splitter.overflowed()) {
            state->failure = UpstreamFailure::protocol;
            co_return;
        }
        if (!events.empty() && !co_await write_chunk(events, *record)) {
            state->client_gone = true;
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

void Session::write_access_log(const RequestRecord& record) const {
    const auto now = Clock::now();
    const double ttfb = record.first_byte ? ms_between(record.start, *record.first_byte) : -1.0;
    log_event(access_log(), spdlog::level::info, "request",
              {{"request_id", record.request_id},
               {"listener", listener_ == Listener::api ? "api" : "admin"},
               {"method", record.method},
               {"path", record.path},
               {"route", record.route},
               {"target", record.target},
               {"status", static_cast<std::int64_t>(record.status)},
               {"bytes_in", static_cast<std::int64_t>(record.bytes_in)},
               {"bytes_out", static_cast<std::int64_t>(record.bytes_out)},
               {"duration_ms", ms_between(record.start, now)},
               {"ttfb_ms", ttfb},
               {"stream", record.stream},
               {"client_gone", record.client_gone},
               {"upstream_failure", record.upstream_failure}});
}

asio::awaitable<void> run_session(Worker* worker, tcp::socket socket, Listener listener) {
    socket.set_option(tcp::no_delay(true));
    {
        Session session(*worker, std::move(socket), listener);
        co_await session.run();
    }
    --worker->connections;
    --worker->shared.open_connections;
    if (worker->accept_waiter != nullptr) worker->accept_waiter->cancel();
}

asio::awaitable<void> accept_loop(Worker* worker, tcp::acceptor* acceptor, Listener listener) {
    for (;;) {
        if (worker->connections >= worker->connection_limit) {
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
            continue;  // e.g. EMFILE: keep serving the connections we have
        }
        ++worker->connections;
        ++worker->shared.open_connections;
        asio::co_spawn(worker->io, run_session(worker, std::move(socket), listener),
                       asio::detached);
    }
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
    const std::string address = endpoint.address().is_v6()
                                    ? fmt::format("[{}]:{}", endpoint.address().to_string(),
                                                  endpoint.port())
                                    : fmt::format("{}:{}", endpoint.address().to_string(),
                                                  endpoint.port());
    log_event(gateway_log(), spdlog::level::info, "listening",
              {{"kind", kind}, {"listen", address}});
}

void start_listeners(std::vector<std::unique_ptr<Worker>>& workers, const Config& config) {
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

void create_pools(Worker& worker, const Shared& shared) {
    for (const auto& provider : shared.config->providers) {
        const unsigned share =
            (provider.max_connections + shared.threads - 1) / shared.threads;
        const auto tls = shared.tls_contexts.find(provider.name);
        worker.pools[provider.name] = std::make_unique<UpstreamPool>(
            worker.io.get_executor(), provider,
            tls == shared.tls_contexts.end() ? nullptr : tls->second, share);
    }
}

/// Waits for SIGTERM/SIGINT on `signals` (created before the listeners, so no signal can
/// slip in between and kill the process undrained), then drains: returns once every
/// connection closed or the drain deadline passed.
void wait_for_shutdown(asio::io_context& control, asio::signal_set& signals,
                       std::vector<std::unique_ptr<Worker>>& workers, Shared& shared) {
    int received = 0;
    signals.async_wait([&received](const error_code& ec, int signal) {
        if (!ec) received = signal;
    });
    control.run();
    log_event(gateway_log(), spdlog::level::info, "draining",
              {{"signal", static_cast<std::int64_t>(received)},
               {"open_connections", static_cast<std::int64_t>(shared.open_connections.load())}});
    shared.draining = true;
    for (auto& worker : workers) {
        asio::post(worker->io, [w = worker.get()] { w->begin_drain(); });
    }
    const auto deadline = Clock::now() + shared.config->limits.drain_timeout;
    while (shared.open_connections.load() > 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    log_event(gateway_log(), spdlog::level::info, "stopped",
              {{"open_connections", static_cast<std::int64_t>(shared.open_connections.load())}});
}

}  // namespace

int serve(std::shared_ptr<const Config> config, const ServeOptions& options) {
    std::signal(SIGPIPE, SIG_IGN);
    asio::io_context control;
    asio::signal_set signals(control, SIGTERM, SIGINT);
    // Worker threads keep the shutdown signals blocked; the control loop takes them.
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    Shared shared;
    shared.config = config;
    shared.threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    shared.provider_auth = resolve_provider_auth(*config);
    shared.models_json = render_models(*config);
    for (const auto& provider : config->providers) {
        if (provider.address.tls) shared.tls_contexts[provider.name] = make_client_tls_context(provider);
        if (!provider.tls_verify) {
            log_event(gateway_log(), spdlog::level::warn, "tls verification disabled",
                      {{"provider", provider.name}});
        }
    }

    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned i = 0; i < shared.threads; ++i) {
        workers.push_back(std::make_unique<Worker>(shared));
        workers.back()->connection_limit =
            std::max(1u, config->limits.max_connections / shared.threads);
        create_pools(*workers.back(), shared);
    }
    start_listeners(workers, *config);

    pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
    for (auto& worker : workers) {
        worker->thread = std::thread([w = worker.get()] {
            auto guard = asio::make_work_guard(w->io);
            w->io.run();
        });
    }
    pthread_sigmask(SIG_UNBLOCK, &blocked, nullptr);
    wait_for_shutdown(control, signals, workers, shared);
    for (auto& worker : workers) worker->io.stop();
    for (auto& worker : workers) worker->thread.join();
    workers.clear();
    flush_logs();
    return 0;
}

}  // namespace turnout::gateway
