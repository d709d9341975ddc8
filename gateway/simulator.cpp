// `turnout simulate`: a fake OpenAI (or, with --kind anthropic, Anthropic Messages API) upstream
// for the integration tests, the benchmark and the demo.
//
// Threading: one io_context per thread, each with its own SO_REUSEPORT acceptor on the same
// port. The kernel spreads connections over the acceptors and every connection then lives on
// one single-threaded io_context: no strands, no scheduler lock (concurrency hint 1), no
// cross-thread wake-ups. A benchmark opens many connections, so the hash spreads them evenly;
// one io_context run by N threads would contend on its scheduler mutex instead. The only
// state shared between threads is the immutable settings, atomic counters and the test-only
// last-request record behind its mutex.
//
// Allocations: the benchmark must never be bounded by the simulator, so a kept-alive
// non-streaming request reuses per-connection memory throughout: a basic_parser subclass
// records the request into reused strings (no Beast fields map), RapidJSON parses into a
// per-connection arena, and responses are rendered into reused strings (no Beast serializer)
// and sent with one gather write.
//
// Roles (openai kind): `answer` (the default) generates text, a stable share of prompts
// (--degrade-rate, or POST /_sim/config at run time) marked ` [degraded]`; `judge` reads the
// fenced answers of a turnout judge prompt and replies with a verdict, so the shadow loop
// (primary, candidate, judge) runs end to end on simulators.

#include "gateway/simulator.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <rapidjson/document.h>

#include "routing/json_input.hpp"

namespace turnout::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using namespace std::literals;

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr std::uint64_t kMaxBodyBytes = 64ull * 1024 * 1024;
// Buffers grown by one huge request are released rather than kept for the connection's life.
constexpr std::size_t kKeptCapacity = 1024 * 1024;
constexpr auto kIdleTimeout = 300s;
constexpr auto kBodyTimeout = 60s;
constexpr auto kWriteTimeout = 30s;
constexpr auto kHandshakeTimeout = 10s;
constexpr auto kCloseTimeout = 2s;
constexpr auto kAcceptBackoff = 50ms;

constexpr std::string_view kDefaultText =
    "The simulated model answers promptly and politely, one token at a time.";
constexpr std::string_view kDefaultModel = "sim-model";
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kToolCallId = "call_sim_1";
constexpr std::string_view kToolArguments = R"({"query":"simulated"})";
constexpr std::size_t kToolArgumentPieces = 4;
constexpr std::size_t kEmbeddingSize = 8;
constexpr std::string_view kSimulatedFailure =
    R"({"error":{"message":"simulated failure","type":"server_error","code":"simulated"}})";
constexpr std::string_view kModelsBody =
    R"({"object":"list","data":[{"id":"sim-model","object":"model",)"
    R"("owned_by":"turnout-simulator"}]})";
// Starts like no HTTP version, so a client's response parser fails on the first line.
constexpr std::string_view kGarbage = "SIMULATED GARBAGE \x01\x02\x03 this is not HTTP\r\n\r\n";
// Appended to the last token of a degraded answer; the judge role scores answers holding the
// tag low.
constexpr std::string_view kDegradedMarker = " [degraded]";
constexpr std::string_view kDegradedTag = "[degraded]";
constexpr std::string_view kWhitespace = " \t\r\n";

// ---------------------------------------------------------------------------------------------
// Settings and shared state

struct Faults {
    int status = 0;                  // 0: none; otherwise answered with the kind's error body
    std::int64_t reset_after = -1;   // content frames before a TCP reset; -1: never
    std::int64_t stream_error = -1;  // anthropic: deltas before an `error` event; -1: never
    bool hang = false;
    bool garbage = false;
};

/// The API the simulator speaks.
enum class Kind { openai, anthropic };

/// What /v1/chat/completions does: generate an answer, or judge a turnout judge prompt.
enum class Role { answer, judge };

struct Settings {
    Kind kind = Kind::openai;
    tcp::endpoint listen;
    unsigned threads = 2;
    std::chrono::milliseconds ttft{0};
    double tps = 0;  // tokens per second; 0: instant
    std::size_t tokens = 16;
    std::vector<std::string> words;  // the answer text, cycled to reach `tokens`
    Faults faults;
    std::string tls_cert;
    std::string tls_key;
    Role role = Role::answer;
    double degrade_rate = 0;  // the start value of SimState::degrade_rate
    bool judge_garbage = false;
    int judge_score = -1;  // -1: computed from the answers
};

/// What one request generates: the settings, overridden by its x-sim-* headers.
struct Generation {
    std::chrono::milliseconds ttft{0};
    double tps = 0;
    std::size_t tokens = 0;
    const std::vector<std::string>* words = nullptr;
    bool degraded = false;  // the last token carries kDegradedMarker
};

struct Plan {
    Faults faults;
    Generation gen;
};

struct Stats {
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> streams_started{0};
    std::atomic<std::uint64_t> streams_completed{0};
    std::atomic<std::uint64_t> streams_aborted{0};
    std::atomic<std::int64_t> active_streams{0};
    std::atomic<std::uint64_t> next_id{0};
    std::atomic<std::uint64_t> degraded_answers{0};
    std::atomic<std::uint64_t> judge_replies{0};
};

void bump(std::atomic<std::uint64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
}

/// One request as received. Its strings and header slots are reused from request to request,
/// so their capacity survives `clear()`.
struct RequestData {
    std::string method;
    std::string target;
    int version = 11;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::size_t header_count = 0;
    std::string body;

    void clear() {
        method.clear();
        target.clear();
        header_count = 0;
        if (body.capacity() > kKeptCapacity) {
            std::string().swap(body);
        }
        body.clear();
    }

    void add_header(std::string_view name, std::string_view value) {
        if (header_count == headers.size()) {
            headers.emplace_back();
        }
        auto& [lower_name, stored_value] = headers[header_count++];
        lower_name.assign(name);
        for (char& c : lower_name) {
            if (c >= 'A' && c <= 'Z') {
                c = static_cast<char>(c - 'A' + 'a');
            }
        }
        stored_value.assign(value);
    }

    std::string_view header(std::string_view lower_name) const {
        for (std::size_t i = 0; i < header_count; ++i) {
            if (headers[i].first == lower_name) {
                return headers[i].second;
            }
        }
        return {};
    }

    void assign_from(const RequestData& other) {
        clear();
        method.assign(other.method);
        target.assign(other.target);
        version = other.version;
        for (std::size_t i = 0; i < other.header_count; ++i) {
            add_header(other.headers[i].first, other.headers[i].second);
        }
        body.assign(other.body);
    }
};

/// Everything the threads share; lives until the last session ends (sessions hold a
/// shared_ptr). Thread safety: `settings` and `tls` are immutable once the threads start,
/// `stats` and `degrade_rate` are atomics, `last` is guarded by `last_mutex` (never held
/// across a co_await).
struct SimState {
    Settings settings;
    std::optional<ssl::context> tls;
    Stats stats;
    std::atomic<double> degrade_rate{0};  // POST /_sim/config changes it at run time
    std::mutex last_mutex;
    RequestData last;
    bool has_last = false;
    std::vector<std::string> tool_preamble;  // anthropic: the text block before a tool_use
};

// ---------------------------------------------------------------------------------------------
// Parsing values (command line and x-sim-* headers)

template <class T>
bool parse_integer(std::string_view text, T& out) {
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return !text.empty() && ec == std::errc() && ptr == end;
}

bool parse_bounded(std::string_view text, std::int64_t low, std::int64_t high,
                   std::int64_t& out) {
    std::int64_t value = 0;
    if (!parse_integer(text, value) || value < low || value > high) {
        return false;
    }
    out = value;
    return true;
}

// Tokens per second: 0 (instant) or at least 0.001, so the pacing interval stays finite.
bool parse_rate(std::string_view text, double& out) {
    double value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value) ||
        (value != 0 && value < 0.001) || value < 0) {
        return false;
    }
    out = value;
    return true;
}

bool parse_flag(std::string_view text, bool& out) {
    if (text == "1" || text == "true" || text == "yes") {
        out = true;
        return true;
    }
    if (text == "0" || text == "false" || text == "no") {
        out = false;
        return true;
    }
    return false;
}

// A 2xx status means "no fault", so a header can switch off --fault-status for one request.
bool parse_status(std::string_view text, int& out) {
    std::int64_t value = 0;
    if (!parse_bounded(text, 200, 599, value)) {
        return false;
    }
    out = value >= 300 ? static_cast<int>(value) : 0;
    return true;
}

bool parse_duration(std::string_view text, std::chrono::milliseconds& out) {
    const std::size_t digits = text.find_first_not_of("0123456789");
    const std::string_view number = text.substr(0, digits);
    const std::string_view unit = digits == std::string_view::npos ? "" : text.substr(digits);
    std::int64_t value = 0;
    if (!parse_bounded(number, 0, 1'000'000'000, value)) {
        return false;
    }
    std::int64_t scale = 0;
    if (unit == "ms") {
        scale = 1;
    } else if (unit == "s") {
        scale = 1000;
    } else if (unit == "m") {
        scale = 60'000;
    } else if (unit == "h") {
        scale = 3'600'000;
    } else if (!(unit.empty() && value == 0)) {
        return false;
    }
    out = std::chrono::milliseconds(value * scale);
    return true;
}

void split_words(std::string_view text, std::vector<std::string>& out) {
    out.clear();
    constexpr std::string_view kSpace = " \t\r\n";
    std::size_t start = text.find_first_not_of(kSpace);
    while (start != std::string_view::npos) {
        const std::size_t end = text.find_first_of(kSpace, start);
        out.emplace_back(text.substr(start, end - start));
        start = end == std::string_view::npos ? end : text.find_first_not_of(kSpace, end);
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering JSON and HTTP by hand into reused strings

void append_number(std::string& out, std::uint64_t value) {
    std::array<char, 24> digits{};
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
    out.append(digits.data(), end);
}

// The shortest text that reads back as `value`.
void append_double(std::string& out, double value) {
    std::array<char, 32> digits{};
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
    out.append(digits.data(), end);
}

void append_fixed(std::string& out, double value) {
    std::array<char, 32> digits{};
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value,
                                   std::chars_format::fixed, 6);
    out.append(digits.data(), end);
}

// Escapes for a JSON string; bytes >= 0x80 pass through (the inputs are UTF-8 JSON).
void append_escaped(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::size_t run = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        out.append(text.substr(run, i - run));
        run = i + 1;
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    out.append(text.substr(run));
}

void append_json_string(std::string& out, std::string_view text) {
    out += '"';
    append_escaped(out, text);
    out += '"';
}

void append_token(std::string& out, const Generation& gen, std::size_t index) {
    append_escaped(out, (*gen.words)[index % gen.words->size()]);
    if (index + 1 < gen.tokens) {
        out += ' ';
    } else if (gen.degraded) {
        out += kDegradedMarker;
    }
}

void append_content(std::string& out, const Generation& gen) {
    out += '"';
    for (std::size_t i = 0; i < gen.tokens; ++i) {
        append_token(out, gen, i);
    }
    out += '"';
}

void append_usage(std::string& out, std::size_t prompt, std::size_t completion) {
    out += R"("usage":{"prompt_tokens":)";
    append_number(out, prompt);
    out += R"(,"completion_tokens":)";
    append_number(out, completion);
    out += R"(,"total_tokens":)";
    append_number(out, prompt + completion);
    out += '}';
}

std::string_view tool_argument_piece(std::size_t index) {
    const std::size_t begin = index * kToolArguments.size() / kToolArgumentPieces;
    const std::size_t end = (index + 1) * kToolArguments.size() / kToolArgumentPieces;
    return kToolArguments.substr(begin, end - begin);
}

void render_error(std::string& out, std::string_view message, std::string_view type,
                  std::string_view code) {
    out.clear();
    out += R"({"error":{"message":)";
    append_json_string(out, message);
    out += R"(,"type":)";
    append_json_string(out, type);
    out += R"(,"code":)";
    append_json_string(out, code);
    out += "}}";
}

/// The identity shared by every chunk of one answer.
struct Reply {
    std::uint64_t id = 0;
    std::int64_t created = 0;
    std::string_view model;
    std::size_t prompt_tokens = 0;
};

void append_reply_head(std::string& out, std::string_view id_prefix, std::string_view object,
                       const Reply& reply) {
    out += R"({"id":")";
    out += id_prefix;
    append_number(out, reply.id);
    out += R"(","object":")";
    out += object;
    out += R"(","created":)";
    append_number(out, static_cast<std::uint64_t>(reply.created));
    out += R"(,"model":)";
    append_json_string(out, reply.model);
}

void append_tool_call(std::string& out, std::string_view tool, std::string_view arguments,
                      bool with_index) {
    out += R"([{)";
    if (with_index) {
        out += R"("index":0,)";
    }
    out += R"("id":")";
    out += kToolCallId;
    out += R"(","type":"function","function":{"name":)";
    append_json_string(out, tool);
    out += R"(,"arguments":)";
    append_json_string(out, arguments);
    out += "}}]";
}

void render_chat_completion(std::string& out, const Reply& reply, const Generation& gen,
                            std::optional<std::string_view> tool) {
    out.clear();
    append_reply_head(out, "chatcmpl-sim-", "chat.completion", reply);
    out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
    if (tool) {
        out += R"(null,"tool_calls":)";
        append_tool_call(out, *tool, kToolArguments, false);
    } else {
        append_content(out, gen);
    }
    out += R"(},"logprobs":null,"finish_reason":)";
    out += tool ? R"("tool_calls")" : R"("stop")";
    out += "}],";
    append_usage(out, reply.prompt_tokens, gen.tokens);
    out += '}';
}

void render_text_completion(std::string& out, const Reply& reply, const Generation& gen) {
    out.clear();
    append_reply_head(out, "cmpl-sim-", "text_completion", reply);
    out += R"(,"choices":[{"text":)";
    append_content(out, gen);
    out += R"(,"index":0,"logprobs":null,"finish_reason":"stop"}],)";
    append_usage(out, reply.prompt_tokens, gen.tokens);
    out += '}';
}

// Deterministic per input, so a test can tell two inputs apart.
void append_embedding(std::string& out, std::uint64_t seed) {
    out += '[';
    for (std::size_t k = 0; k < kEmbeddingSize; ++k) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const double unit = static_cast<double>(seed >> 11) / 9007199254740992.0;
        append_fixed(out, unit * 2 - 1);
        out += k + 1 < kEmbeddingSize ? ',' : ']';
    }
}

std::uint64_t fnv1a(std::string_view bytes) {
    std::uint64_t hash = 14695981039346656037ull;
    for (const char c : bytes) {
        hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
    return hash;
}

void render_embeddings(std::string& out, const Reply& reply, std::size_t inputs,
                       std::string_view body) {
    out.clear();
    out += R"({"object":"list","data":[)";
    const std::uint64_t seed = fnv1a(body);
    for (std::size_t i = 0; i < inputs; ++i) {
        out += i == 0 ? R"({"object":"embedding","index":)" : R"(,{"object":"embedding","index":)";
        append_number(out, i);
        out += R"(,"embedding":)";
        append_embedding(out, seed ^ i);
        out += '}';
    }
    out += R"(],"model":)";
    append_json_string(out, reply.model);
    out += R"(,"usage":{"prompt_tokens":)";
    append_number(out, reply.prompt_tokens);
    out += R"(,"total_tokens":)";
    append_number(out, reply.prompt_tokens);
    out += "}}";
}

void render_stats(std::string& out, const Stats& stats) {
    const std::pair<std::string_view, std::uint64_t> fields[] = {
        {"connections_accepted", stats.connections_accepted.load()},
        {"requests", stats.requests.load()},
        {"streams_started", stats.streams_started.load()},
        {"streams_completed", stats.streams_completed.load()},
        {"streams_aborted", stats.streams_aborted.load()},
        {"degraded_answers", stats.degraded_answers.load()},
        {"judge_replies", stats.judge_replies.load()},
    };
    out = "{";
    for (const auto& [name, value] : fields) {
        append_json_string(out, name);
        out += ':';
        append_number(out, value);
        out += ',';
    }
    out += R"("active_streams":)";
    append_number(out, static_cast<std::uint64_t>(std::max<std::int64_t>(
                           0, stats.active_streams.load())));
    out += '}';
}

// Repeated header fields become one member with their values joined by ", " (RFC 9110 5.3).
void render_last_request(std::string& out, const RequestData& request) {
    out = R"({"method":)";
    append_json_string(out, request.method);
    out += R"(,"target":)";
    append_json_string(out, request.target);
    out += R"(,"headers":{)";
    bool first = true;
    for (std::size_t i = 0; i < request.header_count; ++i) {
        const std::string& name = request.headers[i].first;
        bool repeated = false;
        for (std::size_t j = 0; j < i && !repeated; ++j) {
            repeated = request.headers[j].first == name;
        }
        if (repeated) {
            continue;
        }
        out += first ? "" : ",";
        first = false;
        append_json_string(out, name);
        out += R"(:")";
        append_escaped(out, request.headers[i].second);
        for (std::size_t k = i + 1; k < request.header_count; ++k) {
            if (request.headers[k].first == name) {
                out += ", ";
                append_escaped(out, request.headers[k].second);
            }
        }
        out += '"';
    }
    out += R"(},"body":)";
    append_json_string(out, request.body);
    out += '}';
}

std::string_view reason_phrase(unsigned status) {
    const std::string_view reason = http::obsolete_reason(http::int_to_status(status));
    return reason == "<unknown-status>" ? "Status" : reason;
}

// ---------------------------------------------------------------------------------------------
// Reading requests

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

using Document = rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>,
                                            rapidjson::MemoryPoolAllocator<>>;

/// Per-connection memory for RapidJSON: a typical request parses without touching the heap;
/// bigger documents spill into heap chunks that `clear()` frees. Clear only once the previous
/// document is gone.
class JsonArena {
public:
    JsonArena()
        : values_(value_buffer_.data(), value_buffer_.size()),
          stack_(stack_buffer_.data(), stack_buffer_.size()) {}
    JsonArena(const JsonArena&) = delete;
    JsonArena& operator=(const JsonArena&) = delete;

    Document make_document() { return Document(&values_, 1024, &stack_); }
    void clear() {
        values_.Clear();
        stack_.Clear();
    }

private:
    alignas(8) std::array<char, 16 * 1024> value_buffer_{};
    alignas(8) std::array<char, 4 * 1024> stack_buffer_{};
    rapidjson::MemoryPoolAllocator<> values_;
    rapidjson::MemoryPoolAllocator<> stack_;
};

std::string_view string_member(const rapidjson::Value& object, const char* name,
                               std::string_view fallback) {
    const auto it = object.FindMember(name);
    if (it == object.MemberEnd() || !it->value.IsString()) {
        return fallback;
    }
    return {it->value.GetString(), it->value.GetStringLength()};
}

bool bool_member(const rapidjson::Value& object, const char* name) {
    const auto it = object.FindMember(name);
    return it != object.MemberEnd() && it->value.IsBool() && it->value.GetBool();
}

/// The fields of a chat request the simulator acts on; views into the parsed document.
struct ChatRequest {
    std::string_view model = kDefaultModel;
    bool stream = false;
    bool include_usage = false;
    std::optional<std::string_view> tool;  // the function to call instead of answering
};

// A tool is called when tools are offered, tool_choice is not "none" and the conversation does
// not already end with a tool's result (which the model would now answer in prose).
std::optional<std::string_view> tool_to_call(const rapidjson::Value& request) {
    const auto tools = request.FindMember("tools");
    if (tools == request.MemberEnd() || !tools->value.IsArray() || tools->value.Empty()) {
        return std::nullopt;
    }
    if (string_member(request, "tool_choice", "") == "none") {
        return std::nullopt;
    }
    const auto messages = request.FindMember("messages");
    if (messages != request.MemberEnd() && messages->value.IsArray() &&
        !messages->value.Empty()) {
        const rapidjson::Value& last = messages->value[messages->value.Size() - 1];
        if (last.IsObject() && string_member(last, "role", "") == "tool") {
            return std::nullopt;
        }
    }
    const rapidjson::Value& first = tools->value[0];
    if (!first.IsObject()) {
        return "function";
    }
    const auto function = first.FindMember("function");
    if (function == first.MemberEnd() || !function->value.IsObject()) {
        return "function";
    }
    return string_member(function->value, "name", "function");
}

ChatRequest read_chat_request(const rapidjson::Value& request) {
    ChatRequest chat;
    chat.model = string_member(request, "model", kDefaultModel);
    chat.stream = bool_member(request, "stream");
    const auto options = request.FindMember("stream_options");
    chat.include_usage = options != request.MemberEnd() && options->value.IsObject() &&
                         bool_member(options->value, "include_usage");
    chat.tool = tool_to_call(request);
    return chat;
}

std::size_t embedding_inputs(const rapidjson::Value& request) {
    const auto input = request.FindMember("input");
    if (input == request.MemberEnd() || !input->value.IsArray() || input->value.Empty()) {
        return 1;
    }
    // An array of numbers is one tokenised input; an array of strings or arrays is a batch.
    return input->value[0].IsNumber() ? 1 : input->value.Size();
}

Clock::duration generation_time(const Generation& gen) {
    Clock::duration total = gen.ttft;
    if (gen.tps > 0) {
        total += std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(static_cast<double>(gen.tokens) / gen.tps));
    }
    return total;
}

// ---------------------------------------------------------------------------------------------
// Degraded answers (--degrade-rate)

std::uint64_t mix64(std::uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// A hash of what a JSON value means rather than of its bytes: whitespace, string escapes,
// number spelling and member order leave it unchanged, so a prompt the gateway re-serialises
// (its shadow copy of a request) is treated like the client's original. Recursion is bounded
// by the parser's, which has already walked the same document.
std::uint64_t json_hash(const rapidjson::Value& value) {
    switch (value.GetType()) {
        case rapidjson::kNullType: return mix64(1);
        case rapidjson::kFalseType: return mix64(2);
        case rapidjson::kTrueType: return mix64(3);
        case rapidjson::kStringType:
            return mix64(fnv1a({value.GetString(), value.GetStringLength()}) ^ 4);
        case rapidjson::kNumberType: {
            const double number = value.GetDouble();
            return mix64(std::bit_cast<std::uint64_t>(number == 0 ? 0.0 : number) ^ 5);
        }
        case rapidjson::kArrayType: {
            std::uint64_t hash = mix64(6);
            for (const auto& item : value.GetArray()) {
                hash = mix64(hash ^ json_hash(item));
            }
            return hash;
        }
        case rapidjson::kObjectType: {
            std::uint64_t sum = 0;  // a sum, so the members' order does not count
            for (const auto& member : value.GetObject()) {
                const std::string_view name(member.name.GetString(),
                                            member.name.GetStringLength());
                sum += mix64(fnv1a(name) ^ mix64(json_hash(member.value)));
            }
            return mix64(sum ^ 7);
        }
    }
    return 0;
}

// A stable share `rate` of prompts, decided by the request's `messages` alone, so the same
// prompt gets the same treatment whichever model (simulator) answers it; a higher rate
// degrades a superset of the prompts a lower one does.
bool degraded_prompt(const rapidjson::Value& request, double rate) {
    if (!(rate > 0)) {
        return false;
    }
    const auto messages = request.FindMember("messages");
    const std::uint64_t hash =
        messages == request.MemberEnd() ? mix64(0) : json_hash(messages->value);
    return static_cast<double>(hash >> 11) * 0x1p-53 < rate;
}

bool parse_share(std::string_view text, double& out) {
    double value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end || !(value >= 0 && value <= 1)) {
        return false;
    }
    out = value;
    return true;
}

// ---------------------------------------------------------------------------------------------
// The judge (--role judge)
//
// turnout's judge prompt fences each of REQUEST, ANSWER_A and ANSWER_B between a line
// `<<<{boundary}:NAME` and a line `{boundary}:NAME>>>` (shadow/judge.hpp). The simulated
// judge finds both answers and scores: B tagged [degraded] 40, B identical to A 100, else 97.

constexpr std::string_view kJudgeRefusal = "I cannot evaluate this request.";
constexpr std::string_view kJudgeGarbage =
    "Both answers read reasonably well to me. Answer B phrases a few things differently from "
    "answer A, but I would rather not put a number on it without more context.";
constexpr int kJudgePassScore = 95;

std::string_view trim(std::string_view text) {
    const std::size_t first = text.find_first_not_of(kWhitespace);
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(kWhitespace) - first + 1);
}

bool boundary_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

// The boundary X of an opening line `<<<X:NAME`; empty when `line` is not one.
std::string_view opening_boundary(std::string_view line, std::string_view name) {
    line = trim(line);
    if (!line.starts_with("<<<") || line.size() <= 3 + 1 + name.size() ||
        !line.ends_with(name) || line[line.size() - name.size() - 1] != ':') {
        return {};
    }
    const std::string_view boundary = line.substr(3, line.size() - 3 - 1 - name.size());
    return std::all_of(boundary.begin(), boundary.end(), boundary_char) ? boundary
                                                                      : std::string_view();
}

bool is_closing(std::string_view line, std::string_view boundary, std::string_view name) {
    line = trim(line);
    return line.size() == boundary.size() + 1 + name.size() + 3 && line.starts_with(boundary) &&
           line[boundary.size()] == ':' && line.substr(boundary.size() + 1, name.size()) == name &&
           line.ends_with(">>>");
}

/// Calls `visit(line, begin)` for each line of `text` from `from` (without its line break)
/// until it returns true; returns that line's offset, or npos.
template <class Visit>
std::size_t find_line(std::string_view text, std::size_t from, Visit visit) {
    while (from < text.size()) {
        const std::size_t end = std::min(text.find('\n', from), text.size());
        if (visit(text.substr(from, end - from))) {
            return from;
        }
        from = end + 1;
    }
    return std::string_view::npos;
}

// The content between the first opening line of `name` and the closing line with the same
// boundary; nullopt when there is no such pair.
std::optional<std::string_view> fenced_block(std::string_view text, std::string_view name) {
    std::optional<std::string_view> block;
    find_line(text, 0, [&](std::string_view line) {
        const std::string_view boundary = opening_boundary(line, name);
        if (boundary.empty()) {
            return false;
        }
        const std::size_t begin = static_cast<std::size_t>(line.data() - text.data()) +
                                  line.size() + 1;
        const std::size_t close = find_line(text, begin, [&](std::string_view candidate) {
            return is_closing(candidate, boundary, name);
        });
        if (close == std::string_view::npos) {
            return false;
        }
        std::string_view content = text.substr(begin, close - begin);
        if (content.ends_with('\n')) {
            content.remove_suffix(1);
        }
        if (content.ends_with('\r')) {
            content.remove_suffix(1);
        }
        block = content;
        return true;
    });
    return block;
}

// The text of the last user message: its string content, or its text parts joined by line
// breaks (the join is built in `scratch`).
std::string_view last_user_text(const rapidjson::Value& request, std::string& scratch) {
    const auto messages = request.FindMember("messages");
    if (messages == request.MemberEnd() || !messages->value.IsArray()) {
        return {};
    }
    const auto& list = messages->value;
    for (rapidjson::SizeType i = list.Size(); i-- > 0;) {
        if (!list[i].IsObject() || string_member(list[i], "role", "") != "user") {
            continue;
        }
        const auto content = list[i].FindMember("content");
        if (content == list[i].MemberEnd()) {
            return {};
        }
        if (content->value.IsString()) {
            return {content->value.GetString(), content->value.GetStringLength()};
        }
        scratch.clear();
        if (content->value.IsArray()) {
            for (const auto& part : content->value.GetArray()) {
                if (part.IsObject() && string_member(part, "type", "") == "text") {
                    scratch += scratch.empty() ? "" : "\n";
                    scratch += string_member(part, "text", "");
                }
            }
        }
        return scratch;
    }
    return {};
}

struct JudgeVerdict {
    int score = 0;
    std::string_view reason;
    std::string_view diff_summary;
};

/// nullopt when the prompt lacks either answer's fences.
std::optional<JudgeVerdict> judge_answers(std::string_view prompt, int forced_score) {
    const std::optional<std::string_view> a = fenced_block(prompt, "ANSWER_A");
    const std::optional<std::string_view> b = fenced_block(prompt, "ANSWER_B");
    if (!a || !b) {
        return std::nullopt;
    }
    if (forced_score >= 0) {
        return JudgeVerdict{forced_score, "The simulated judge was told to give this score.",
                            "not compared (--judge-score)"};
    }
    if (b->find(kDegradedTag) != std::string_view::npos) {
        return JudgeVerdict{40, "Answer B is degraded: it cannot replace reference answer A.",
                            "B is marked [degraded]"};
    }
    if (*b == *a) {
        return JudgeVerdict{100, "Answer B is identical to reference answer A.", "none"};
    }
    return JudgeVerdict{97, "Answer B says what answer A says in different words.",
                        "wording only"};
}

// The verdict as a chatty model writes it: a preamble, then the JSON in a code fence.
void render_verdict(std::string& out, const JudgeVerdict& verdict) {
    out = "Here is my verdict:\n```json\n{\"score\": ";
    append_number(out, static_cast<std::uint64_t>(verdict.score));
    out += ", \"pass\": ";
    out += verdict.score >= kJudgePassScore ? "true" : "false";
    out += ", \"reason\": ";
    append_json_string(out, verdict.reason);
    out += ", \"diff_summary\": ";
    append_json_string(out, verdict.diff_summary);
    out += "}\n```";
}

void render_judge_completion(std::string& out, const Reply& reply, std::string_view content,
                             std::size_t completion_tokens) {
    out.clear();
    append_reply_head(out, "chatcmpl-sim-", "chat.completion", reply);
    out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
    append_json_string(out, content);
    out += R"(},"logprobs":null,"finish_reason":"stop"}],)";
    append_usage(out, reply.prompt_tokens, completion_tokens);
    out += '}';
}

// ---------------------------------------------------------------------------------------------
// The Anthropic Messages API (--kind anthropic, anthropic-version 2023-06-01)
//
// Requests are validated like the real API validates them (required headers and fields,
// alternating roles, non-empty text, tool_use/tool_result pairing, extra fields rejected), so
// a translation bug in the gateway fails here as it would in production. Error messages follow
// the real ones' `path: message` form without copying every wording.

constexpr std::string_view kAnthropicToolId = "toolu_sim_1";
constexpr std::string_view kToolPreamble = "Let me check.";
// The real API's first input_json_delta carries an empty partial_json: clients must cope.
constexpr std::size_t kToolInputDeltas = kToolArgumentPieces + 1;
constexpr std::string_view kAnthropicModelsBody =
    R"({"data":[{"type":"model","id":"sim-model","display_name":"Simulated model",)"
    R"("created_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"sim-model",)"
    R"("last_id":"sim-model"})";
constexpr std::string_view kOverloadedEvent =
    "event: error\n"
    R"(data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"
    "\n\n";

constexpr std::array<std::string_view, 21> kMessagesFields = {
    "model",          "messages",     "max_tokens",    "system",             "metadata",
    "stop_sequences", "stream",       "temperature",   "top_k",              "top_p",
    "tools",          "tool_choice",  "thinking",      "service_tier",       "container",
    "mcp_servers",    "speed",        "output_config", "context_management", "output_format",
    "inference_geo"};
// Block types accepted without a closer look; text, image, tool_use and tool_result are checked.
constexpr std::array<std::string_view, 12> kOtherBlockTypes = {
    "document",          "search_result",          "thinking",
    "redacted_thinking", "server_tool_use",        "web_search_tool_result",
    "web_fetch_tool_result", "code_execution_tool_result", "mcp_tool_use",
    "mcp_tool_result",   "container_upload",       "tool_reference"};

template <std::size_t N>
bool one_of(const std::array<std::string_view, N>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

std::string_view anthropic_error_type(unsigned status) {
    switch (status) {
        case 401: return "authentication_error";
        case 402: return "billing_error";
        case 403: return "permission_error";
        case 404: return "not_found_error";
        case 413: return "request_too_large";
        case 429: return "rate_limit_error";
        case 503:
        case 529: return "overloaded_error";
        case 504: return "timeout_error";
        default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

std::string_view anthropic_fault_message(std::string_view type) {
    if (type == "overloaded_error") {
        return "Overloaded";
    }
    if (type == "rate_limit_error") {
        return "Number of requests has exceeded your rate limit (simulated)";
    }
    return "simulated failure";
}

void render_anthropic_error(std::string& out, std::string_view type, std::string_view message) {
    out.clear();
    out += R"({"type":"error","error":{"type":)";
    append_json_string(out, type);
    out += R"(,"message":)";
    append_json_string(out, message);
    out += "}}";
}

const rapidjson::Value* find(const rapidjson::Value& object, const char* name) {
    const auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string_view view(const rapidjson::Value& value) {
    return {value.GetString(), value.GetStringLength()};
}

/// Builds the `path: message` of the first problem found into a reused string. A Scope adds
/// one path element and removes it again unless a problem was found under it.
class Problem {
public:
    explicit Problem(std::string& out) : out_(out) { out_.clear(); }

    class Scope {
    public:
        Scope(Problem& problem, std::string_view name) : problem_(problem), mark_(begin()) {
            problem_.out_ += name;
        }
        Scope(Problem& problem, std::size_t index) : problem_(problem), mark_(begin()) {
            append_number(problem_.out_, index);
        }
        ~Scope() {
            if (!problem_.found_) {
                problem_.out_.resize(mark_);
            }
        }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        std::size_t begin() {
            const std::size_t mark = problem_.out_.size();
            if (mark != 0) {
                problem_.out_ += '.';
            }
            return mark;
        }
        Problem& problem_;
        std::size_t mark_;
    };

    bool fail(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
        found_ = true;
        if (!out_.empty()) {
            out_ += ": ";
        }
        out_ += a;
        out_ += b;
        out_ += c;
        return false;
    }

private:
    std::string& out_;
    bool found_ = false;
};

bool fail_field(Problem& problem, std::string_view name, std::string_view a,
                std::string_view b = {}, std::string_view c = {}) {
    const Problem::Scope scope(problem, name);
    return problem.fail(a, b, c);
}

bool string_field(const rapidjson::Value& object, const char* name, Problem& problem,
                  std::string_view& out) {
    const rapidjson::Value* value = find(object, name);
    if (value != nullptr && value->IsString()) {
        out = view(*value);
        return true;
    }
    return fail_field(problem, name,
                      value == nullptr ? "Field required" : "Input should be a valid string");
}

bool check_text_block(const rapidjson::Value& block, Problem& problem) {
    std::string_view text;
    if (!string_field(block, "text", problem, text)) {
        return false;
    }
    if (text.empty()) {
        return problem.fail("text content blocks must be non-empty");
    }
    if (text.find_first_not_of(kWhitespace) == std::string_view::npos) {
        return problem.fail("text content blocks must contain non-whitespace text");
    }
    return true;
}

bool check_image_block(const rapidjson::Value& block, Problem& problem) {
    const rapidjson::Value* source = find(block, "source");
    if (source == nullptr || !source->IsObject()) {
        return fail_field(problem, "source",
                          source == nullptr ? "Field required"
                                            : "Input should be a valid dictionary");
    }
    const Problem::Scope scope(problem, "source");
    std::string_view type;
    std::string_view value;
    if (!string_field(*source, "type", problem, type)) {
        return false;
    }
    if (type == "base64") {
        if (!string_field(*source, "media_type", problem, type) ||
            !string_field(*source, "data", problem, value)) {
            return false;
        }
        if (type != "image/jpeg" && type != "image/png" && type != "image/gif" &&
            type != "image/webp") {
            return fail_field(problem, "media_type",
                              "Input should be 'image/jpeg', 'image/png', 'image/gif' or "
                              "'image/webp'");
        }
        return true;
    }
    if (type == "url") {
        return string_field(*source, "url", problem, value);
    }
    if (type == "file") {
        return string_field(*source, "file_id", problem, value);
    }
    return fail_field(problem, "type", "Input should be 'base64', 'url' or 'file'");
}

bool check_block(const rapidjson::Value& block, std::string_view role, Problem& problem);

bool check_tool_result_block(const rapidjson::Value& block, Problem& problem) {
    std::string_view id;
    if (!string_field(block, "tool_use_id", problem, id)) {
        return false;
    }
    const rapidjson::Value* is_error = find(block, "is_error");
    if (is_error != nullptr && !is_error->IsBool()) {
        return fail_field(problem, "is_error", "Input should be a valid boolean");
    }
    const rapidjson::Value* content = find(block, "content");
    if (content == nullptr || content->IsString()) {
        return true;
    }
    if (!content->IsArray()) {
        return fail_field(problem, "content", "Input should be a valid string or list");
    }
    const Problem::Scope scope(problem, "content");
    for (rapidjson::SizeType i = 0; i < content->Size(); ++i) {
        const Problem::Scope item(problem, i);
        const rapidjson::Value& part = (*content)[i];
        if (part.IsObject() && string_member(part, "type", "") == "tool_result") {
            return fail_field(problem, "type", "tool_result blocks cannot be nested");
        }
        if (!check_block(part, "user", problem)) {
            return false;
        }
    }
    return true;
}

bool check_block(const rapidjson::Value& block, std::string_view role, Problem& problem) {
    if (!block.IsObject()) {
        return problem.fail("Input should be a valid dictionary");
    }
    std::string_view type;
    if (!string_field(block, "type", problem, type)) {
        return false;
    }
    if (type == "text") {
        return check_text_block(block, problem);
    }
    if (type == "image") {
        return check_image_block(block, problem);
    }
    if (type == "tool_use") {
        if (role != "assistant") {
            return problem.fail("tool_use blocks can only appear in assistant messages");
        }
        std::string_view value;
        if (!string_field(block, "id", problem, value) ||
            !string_field(block, "name", problem, value)) {
            return false;
        }
        const rapidjson::Value* input = find(block, "input");
        if (input == nullptr || !input->IsObject()) {
            return fail_field(problem, "input",
                              input == nullptr ? "Field required"
                                               : "Input should be a valid dictionary");
        }
        return true;
    }
    if (type == "tool_result") {
        if (role != "user") {
            return problem.fail("tool_result blocks can only appear in user messages");
        }
        return check_tool_result_block(block, problem);
    }
    if (one_of(kOtherBlockTypes, type)) {
        return true;
    }
    return fail_field(problem, "type", "Input tag '", type,
                      "' found using 'type' does not match any of the expected tags");
}

// The text a final assistant message (a prefill) ends with, which may not end in whitespace.
std::string_view final_text(const rapidjson::Value& content) {
    if (content.IsString()) {
        return view(content);
    }
    if (content.IsArray() && !content.Empty()) {
        return string_member(content[content.Size() - 1], "text", "");
    }
    return {};
}

bool check_message(const rapidjson::Value& message, bool final, Problem& problem) {
    if (!message.IsObject()) {
        return problem.fail("Input should be a valid dictionary");
    }
    for (const auto& member : message.GetObject()) {
        const std::string_view name = view(member.name);
        if (name != "role" && name != "content") {
            return fail_field(problem, name, "Extra inputs are not permitted");
        }
    }
    std::string_view role;
    if (!string_field(message, "role", problem, role)) {
        return false;
    }
    if (role != "user" && role != "assistant") {
        return fail_field(problem, "role", "Input should be 'user' or 'assistant'");
    }
    const rapidjson::Value* content = find(message, "content");
    if (content == nullptr) {
        return fail_field(problem, "content", "Field required");
    }
    if (!content->IsString() && !content->IsArray()) {
        return fail_field(problem, "content", "Input should be a valid string or list");
    }
    const bool prefill = final && role == "assistant";
    const bool empty = content->IsString() ? content->GetStringLength() == 0 : content->Empty();
    if (empty && !prefill) {
        return problem.fail(
            "all messages must have non-empty content except for the optional final assistant "
            "message");
    }
    if (content->IsArray()) {
        const Problem::Scope scope(problem, "content");
        for (rapidjson::SizeType i = 0; i < content->Size(); ++i) {
            const Problem::Scope item(problem, i);
            if (!check_block((*content)[i], role, problem)) {
                return false;
            }
        }
    }
    const std::string_view text = final_text(*content);
    if (prefill && !text.empty() && kWhitespace.find(text.back()) != std::string_view::npos) {
        return problem.fail("final assistant content cannot end with trailing whitespace");
    }
    return true;
}

// Whether a message's content holds a block of `type` whose `key` is `value` (any value when
// `value` is empty).
bool has_block(const rapidjson::Value& message, std::string_view type, const char* key,
               std::string_view value) {
    const rapidjson::Value* content = find(message, "content");
    if (content == nullptr || !content->IsArray()) {
        return false;
    }
    for (const auto& block : content->GetArray()) {
        if (string_member(block, "type", "") == type &&
            (value.empty() || string_member(block, key, "") == value)) {
            return true;
        }
    }
    return false;
}

// Every tool_use needs its tool_result in the next message, and every tool_result its tool_use
// in the previous one. Runs after check_message, so the shapes are known to be right.
bool check_tool_pairing(const rapidjson::Value& messages, Problem& problem) {
    for (rapidjson::SizeType i = 0; i < messages.Size(); ++i) {
        const Problem::Scope scope(problem, i);
        const rapidjson::Value& content = messages[i]["content"];
        if (!content.IsArray()) {
            continue;
        }
        for (rapidjson::SizeType j = 0; j < content.Size(); ++j) {
            const std::string_view type = string_member(content[j], "type", "");
            if (type == "tool_use" && i + 1 < messages.Size()) {
                const std::string_view id = string_member(content[j], "id", "");
                if (!has_block(messages[i + 1], "tool_result", "tool_use_id", id)) {
                    return problem.fail(
                        "`tool_use` ids were found without `tool_result` blocks immediately "
                        "after: ",
                        id,
                        ". Each `tool_use` block must have a corresponding `tool_result` block "
                        "in the next message.");
                }
            }
            if (type == "tool_result") {
                const std::string_view id = string_member(content[j], "tool_use_id", "");
                if (i == 0 || !has_block(messages[i - 1], "tool_use", "id", id)) {
                    const Problem::Scope block(problem, "content");
                    const Problem::Scope index(problem, j);
                    return problem.fail(
                        "unexpected `tool_use_id` found in `tool_result` blocks: ", id,
                        ". Each `tool_result` block must have a corresponding `tool_use` block "
                        "in the previous message.");
                }
            }
        }
    }
    return true;
}

bool check_messages(const rapidjson::Value& request, Problem& problem) {
    const Problem::Scope scope(problem, "messages");
    const rapidjson::Value* messages = find(request, "messages");
    if (messages == nullptr) {
        return problem.fail("Field required");
    }
    if (!messages->IsArray()) {
        return problem.fail("Input should be a valid list");
    }
    if (messages->Empty()) {
        return problem.fail("at least one message is required");
    }
    std::string_view previous;
    for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
        {
            const Problem::Scope item(problem, i);
            if (!check_message((*messages)[i], i + 1 == messages->Size(), problem)) {
                return false;
            }
        }
        const std::string_view role = string_member((*messages)[i], "role", "");
        if (i == 0 && role != "user") {
            return problem.fail(R"(first message must use the "user" role)");
        }
        if (role == previous) {
            return problem.fail(
                R"(roles must alternate between "user" and "assistant", but found multiple ")",
                role, R"(" roles in a row)");
        }
        previous = role;
    }
    return check_tool_pairing(*messages, problem);
}

bool check_system(const rapidjson::Value& request, Problem& problem) {
    const rapidjson::Value* system = find(request, "system");
    if (system == nullptr || system->IsString()) {
        return true;
    }
    const Problem::Scope scope(problem, "system");
    if (!system->IsArray()) {
        return problem.fail("Input should be a valid string or list");
    }
    for (rapidjson::SizeType i = 0; i < system->Size(); ++i) {
        const Problem::Scope item(problem, i);
        const rapidjson::Value& block = (*system)[i];
        if (!block.IsObject()) {
            return problem.fail("Input should be a valid dictionary");
        }
        if (string_member(block, "type", "") != "text") {
            return fail_field(problem, "type", "Input should be 'text'");
        }
        if (!check_text_block(block, problem)) {
            return false;
        }
    }
    return true;
}

bool valid_tool_name(std::string_view name) {
    return !name.empty() && name.size() <= 128 &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '-';
           });
}

bool check_tool(const rapidjson::Value& tool, Problem& problem) {
    if (!tool.IsObject()) {
        return problem.fail("Input should be a valid dictionary");
    }
    std::string_view name;
    if (!string_field(tool, "name", problem, name)) {
        return false;
    }
    const std::string_view type = string_member(tool, "type", "custom");
    if (type != "custom") {
        return true;  // a server tool (web_search_..., bash_..., ...): configured by its type
    }
    if (!valid_tool_name(name)) {
        return fail_field(problem, "name", "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'");
    }
    const rapidjson::Value* description = find(tool, "description");
    if (description != nullptr && !description->IsString()) {
        return fail_field(problem, "description", "Input should be a valid string");
    }
    const rapidjson::Value* schema = find(tool, "input_schema");
    if (schema == nullptr || !schema->IsObject()) {
        return fail_field(problem, "input_schema",
                          schema == nullptr ? "Field required"
                                            : "Input should be a valid dictionary");
    }
    if (string_member(*schema, "type", "") != "object") {
        const Problem::Scope scope(problem, "input_schema");
        return fail_field(problem, "type", "Input should be 'object'");
    }
    return true;
}

bool check_tools(const rapidjson::Value& request, Problem& problem) {
    const rapidjson::Value* tools = find(request, "tools");
    if (tools == nullptr) {
        return true;
    }
    const Problem::Scope scope(problem, "tools");
    if (!tools->IsArray()) {
        return problem.fail("Input should be a valid list");
    }
    for (rapidjson::SizeType i = 0; i < tools->Size(); ++i) {
        {
            const Problem::Scope item(problem, i);
            if (!check_tool((*tools)[i], problem)) {
                return false;
            }
        }
        const std::string_view name = string_member((*tools)[i], "name", "");
        for (rapidjson::SizeType j = 0; j < i; ++j) {
            if (string_member((*tools)[j], "name", "") == name) {
                return problem.fail("Tool names must be unique.");
            }
        }
    }
    return true;
}

// On success `type` is auto, any, tool or none ("auto" when absent) and `name` the forced tool.
bool check_tool_choice(const rapidjson::Value& request, Problem& problem, std::string_view& type,
                       std::string_view& name) {
    type = "auto";
    const rapidjson::Value* choice = find(request, "tool_choice");
    if (choice == nullptr) {
        return true;
    }
    const Problem::Scope scope(problem, "tool_choice");
    if (!choice->IsObject()) {
        return problem.fail("Input should be a valid dictionary");
    }
    if (!string_field(*choice, "type", problem, type)) {
        return false;
    }
    if (type != "auto" && type != "any" && type != "tool" && type != "none") {
        return fail_field(problem, "type", "Input should be 'auto', 'any', 'tool' or 'none'");
    }
    const rapidjson::Value* parallel = find(*choice, "disable_parallel_tool_use");
    if (parallel != nullptr && !parallel->IsBool()) {
        return fail_field(problem, "disable_parallel_tool_use", "Input should be a valid boolean");
    }
    return type != "tool" || string_field(*choice, "name", problem, name);
}

bool check_number(const rapidjson::Value& request, const char* name, double high,
                  Problem& problem) {
    const rapidjson::Value* value = find(request, name);
    if (value == nullptr) {
        return true;
    }
    if (!value->IsNumber()) {
        return fail_field(problem, name, "Input should be a valid number");
    }
    if (value->GetDouble() < 0) {
        return fail_field(problem, name, "Input should be greater than or equal to 0");
    }
    if (value->GetDouble() > high) {
        return fail_field(problem, name, "Input should be less than or equal to 1");
    }
    return true;
}

bool check_sampling(const rapidjson::Value& request, Problem& problem) {
    if (!check_number(request, "temperature", 1, problem) ||
        !check_number(request, "top_p", 1, problem)) {
        return false;
    }
    const rapidjson::Value* top_k = find(request, "top_k");
    if (top_k != nullptr && !(top_k->IsUint64())) {
        return fail_field(problem, "top_k", "Input should be a non-negative integer");
    }
    const rapidjson::Value* stream = find(request, "stream");
    if (stream != nullptr && !stream->IsBool()) {
        return fail_field(problem, "stream", "Input should be a valid boolean");
    }
    const rapidjson::Value* metadata = find(request, "metadata");
    if (metadata != nullptr && !metadata->IsObject()) {
        return fail_field(problem, "metadata", "Input should be a valid dictionary");
    }
    const rapidjson::Value* stops = find(request, "stop_sequences");
    if (stops == nullptr) {
        return true;
    }
    const Problem::Scope scope(problem, "stop_sequences");
    if (!stops->IsArray()) {
        return problem.fail("Input should be a valid list");
    }
    for (rapidjson::SizeType i = 0; i < stops->Size(); ++i) {
        if (!(*stops)[i].IsString()) {
            const Problem::Scope item(problem, i);
            return problem.fail("Input should be a valid string");
        }
    }
    return true;
}

bool check_max_tokens(const rapidjson::Value& request, bool required, Problem& problem,
                      std::size_t& out) {
    const rapidjson::Value* value = find(request, "max_tokens");
    if (value == nullptr) {
        return !required || fail_field(problem, "max_tokens", "Field required");
    }
    if (!value->IsInt64()) {
        return fail_field(problem, "max_tokens", "Input should be a valid integer");
    }
    if (value->GetInt64() < 1) {
        return fail_field(problem, "max_tokens", "Input should be greater than or equal to 1");
    }
    out = static_cast<std::size_t>(value->GetInt64());
    return true;
}

/// The fields of a Messages request the simulator acts on; views into the parsed document.
struct MessagesRequest {
    std::string_view model;
    std::size_t max_tokens = 0;
    bool stream = false;
    std::optional<std::string_view> tool;  // the tool to call instead of answering
    std::string_view speed;                // the body's `speed`, if any
};

// A tool is called when tools are offered, tool_choice is not none and the last user message
// does not carry a tool_result (which the model would now answer in prose). A forced tool
// (tool_choice {type: tool}) is the one called; otherwise the first.
std::optional<std::string_view> anthropic_tool_to_call(const rapidjson::Value& request,
                                                       std::string_view choice,
                                                       std::string_view forced) {
    const rapidjson::Value* tools = find(request, "tools");
    if (tools == nullptr || tools->Empty() || choice == "none") {
        return std::nullopt;
    }
    const rapidjson::Value& messages = request["messages"];
    for (rapidjson::SizeType i = messages.Size(); i-- > 0;) {
        if (string_member(messages[i], "role", "") == "user") {
            if (has_block(messages[i], "tool_result", "tool_use_id", "")) {
                return std::nullopt;
            }
            break;
        }
    }
    if (choice == "tool") {
        return forced;
    }
    return string_member((*tools)[0], "name", "tool");
}

/// Validates a Messages (or count_tokens) request. On failure `problem` holds the message.
bool read_messages_request(const rapidjson::Value& request, bool count_only,
                           MessagesRequest& out, std::string& problem_text) {
    Problem problem(problem_text);
    for (const auto& member : request.GetObject()) {
        if (!one_of(kMessagesFields, view(member.name))) {
            return fail_field(problem, view(member.name), "Extra inputs are not permitted");
        }
    }
    if (!string_field(request, "model", problem, out.model)) {
        return false;
    }
    if (out.model.empty()) {
        return fail_field(problem, "model", "String should have at least 1 character");
    }
    std::string_view choice;
    std::string_view forced;
    if (!check_max_tokens(request, !count_only, problem, out.max_tokens) ||
        !check_messages(request, problem) || !check_system(request, problem) ||
        !check_tools(request, problem) || !check_tool_choice(request, problem, choice, forced) ||
        !check_sampling(request, problem)) {
        return false;
    }
    if (const rapidjson::Value* speed = find(request, "speed")) {
        if (!speed->IsString() || (view(*speed) != "fast" && view(*speed) != "standard")) {
            return fail_field(problem, "speed", "Input should be 'standard' or 'fast'");
        }
        out.speed = view(*speed);
    }
    out.stream = bool_member(request, "stream");
    out.tool = anthropic_tool_to_call(request, choice, forced);
    return true;
}

/// What one Messages answer holds: a text block, then maybe a tool_use block.
struct MessageAnswer {
    Reply reply;
    Generation text;  // the text block's tokens
    std::optional<std::string_view> tool;
    std::string_view stop_reason;
    std::size_t output_tokens = 0;
    std::string_view speed;  // usage.speed; empty: absent

    std::size_t deltas() const { return text.tokens + (tool ? kToolInputDeltas : 0); }
};

// Fast mode is the body's `speed: "fast"`, or the fast-mode beta without `speed: "standard"`.
std::string_view answer_speed(const MessagesRequest& request, bool beta_fast) {
    if (request.speed == "fast" || (beta_fast && request.speed != "standard")) {
        return "fast";
    }
    return request.speed.empty() ? std::string_view() : "standard";
}

std::string_view tool_input_piece(std::size_t index) {
    return index == 0 ? std::string_view() : tool_argument_piece(index - 1);
}

void append_message_head(std::string& out, const Reply& reply) {
    out += R"({"id":"msg_sim_)";
    append_number(out, reply.id);
    out += R"(","type":"message","role":"assistant","model":)";
    append_json_string(out, reply.model);
    out += R"(,"content":)";
}

void append_message_usage(std::string& out, std::size_t input, std::size_t output,
                          std::string_view speed) {
    out += R"("usage":{"input_tokens":)";
    append_number(out, input);
    out += R"(,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":)";
    append_number(out, output);
    if (!speed.empty()) {
        out += R"(,"speed":)";
        append_json_string(out, speed);
    }
    out += '}';
}

void render_message(std::string& out, const MessageAnswer& answer) {
    out.clear();
    append_message_head(out, answer.reply);
    out += R"([{"type":"text","text":)";
    append_content(out, answer.text);
    out += '}';
    if (answer.tool) {
        out += R"(,{"type":"tool_use","id":")";
        out += kAnthropicToolId;
        out += R"(","name":)";
        append_json_string(out, *answer.tool);
        out += R"(,"input":)";
        out += kToolArguments;
        out += '}';
    }
    out += R"(],"stop_reason":")";
    out += answer.stop_reason;
    out += R"(","stop_sequence":null,)";
    append_message_usage(out, answer.reply.prompt_tokens, answer.output_tokens, answer.speed);
    out += '}';
}

// An SSE event: `event: <type>` and a data object whose `type` repeats it, as the real API
// sends them. end_event closes the object.
void begin_event(std::string& out, std::string_view type) {
    out = "event: ";
    out += type;
    out += "\ndata: {\"type\":\"";
    out += type;
    out += '"';
}

void end_event(std::string& out) { out += "}\n\n"; }

// ---------------------------------------------------------------------------------------------
// The session

template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

template <class Stream>
Stream wrap_socket(tcp::socket socket, SimState& state) {
    if constexpr (kIsTls<Stream>) {
        return Stream(std::move(socket), *state.tls);
    } else {
        return Stream(std::move(socket));
    }
}

/// What the connection does after an answer.
enum class After { next_request, close, drop };  // drop: already reset or dead

// ended: the stream was closed cleanly early (an Anthropic `error` event was its last frame).
enum class StreamStep { ok, aborted, reset, ended };

/// Keeps active_streams right however a stream ends (including io_context destruction).
class ActiveStream {
public:
    explicit ActiveStream(Stats& stats) : stats_(stats) {
        bump(stats_.streams_started);
        stats_.active_streams.fetch_add(1, std::memory_order_relaxed);
    }
    ~ActiveStream() { stats_.active_streams.fetch_sub(1, std::memory_order_relaxed); }
    ActiveStream(const ActiveStream&) = delete;
    ActiveStream& operator=(const ActiveStream&) = delete;

private:
    Stats& stats_;
};

/// One client connection, over plain TCP or TLS. Lives in the frame of run_session() on a
/// single-threaded io_context, so it needs no strand. Requests are read and answered one at a
/// time, which answers pipelined requests in order.
template <class Stream>
class Session {
public:
    Session(tcp::socket socket, std::shared_ptr<SimState> state)
        : stream_(wrap_socket<Stream>(std::move(socket), *state)),
          state_(std::move(state)),
          timer_(stream_.get_executor()) {}

    asio::awaitable<void> run();

private:
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

    asio::awaitable<bool> handshake();
    asio::awaitable<After> serve_one();
    asio::awaitable<error_code> read_request();
    asio::awaitable<After> reject_unreadable(error_code ec);
    asio::awaitable<After> respond();
    asio::awaitable<After> serve_control(std::string_view path);
    asio::awaitable<After> serve_api(std::string_view path, Plan plan);
    asio::awaitable<After> chat_completions(Plan plan);
    asio::awaitable<After> send_verdict(ChatRequest chat, Plan plan);
    asio::awaitable<After> completions(Plan plan);
    asio::awaitable<After> embeddings(Plan plan);

    asio::awaitable<After> stream_chat(ChatRequest chat, Plan plan);
    asio::awaitable<StreamStep> open_stream(ChatRequest chat);
    asio::awaitable<StreamStep> stream_pieces(ChatRequest chat, Plan plan);
    asio::awaitable<StreamStep> close_stream(ChatRequest chat, Plan plan);

    // --kind anthropic
    asio::awaitable<After> serve_anthropic(std::string_view path, Plan plan);
    asio::awaitable<After> messages(Plan plan, bool count_only);
    asio::awaitable<After> stream_message(MessageAnswer answer, Plan plan);
    asio::awaitable<StreamStep> open_message(MessageAnswer answer);
    asio::awaitable<StreamStep> stream_block(MessageAnswer answer, Plan plan, std::size_t block,
                                             Clock::time_point start);
    asio::awaitable<StreamStep> close_message(MessageAnswer answer, Plan plan);
    asio::awaitable<StreamStep> delta_fault(Plan plan, std::size_t delta);
    unsigned check_anthropic_headers();
    MessageAnswer plan_answer(const MessagesRequest& request, const Plan& plan) const;

    asio::awaitable<After> send_body(unsigned status, std::string_view content_type);
    asio::awaitable<bool> write_stream_head();
    asio::awaitable<bool> write_raw(std::string_view bytes);
    asio::awaitable<bool> write_frame(bool last);
    asio::awaitable<void> sleep_until(Clock::time_point when);
    asio::awaitable<After> hang_until_closed();
    asio::awaitable<void> shutdown();
    After reset_connection();

    std::string plan_request(Plan& plan);
    void compose_verdict(const rapidjson::Value& request);
    unsigned configure();
    void render_config();
    bool apply_override(Plan& plan, std::string_view key, std::string_view value);
    void record_last_request();
    bool parse_body(Document& doc);
    bool anthropic() const { return state_->settings.kind == Kind::anthropic; }
    void render_failure(unsigned status, std::string_view message, std::string_view code);
    void render_fault(unsigned status);
    Reply new_reply(std::string_view model) const;
    void render_head(unsigned status, std::string_view content_type,
                     std::optional<std::size_t> content_length);
    void begin_frame();
    void end_frame(std::string_view finish_reason);

    Stream stream_;
    std::shared_ptr<SimState> state_;
    asio::steady_timer timer_;
    beast::flat_buffer buffer_;
    RequestData request_;
    bool keep_alive_ = true;
    bool chunked_ = true;
    JsonArena arena_;
    std::vector<std::string> override_words_;
    std::string head_;          // the response head
    std::string body_;          // a Content-Length framed body
    std::string frame_;         // one SSE frame
    std::string chunk_prefix_;  // `{"id":...,"choices":` shared by the frames of one stream
    std::string problem_;       // anthropic: what is wrong with the request
    std::string judge_prompt_;  // judge: the text parts of a prompt, joined
    std::string verdict_;       // judge: the reply text
    Reply reply_;
    std::uint64_t request_number_ = 0;  // anthropic: the request-id header; 0: none
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
        co_return co_await send_body(431, kJson);
    }
    if (ec == http::error::body_limit) {
        render_failure(413, "request body too large", "body_too_large");
        co_return co_await send_body(413, kJson);
    }
    const auto& http_errors = http::make_error_code(http::error::bad_target).category();
    const bool malformed = ec.category() == http_errors && ec != http::error::end_of_stream &&
                           ec != http::error::partial_message;
    if (!malformed) {
        co_return After::drop;  // the client went away or timed out
    }
    render_failure(400, "malformed HTTP request", "bad_request");
    co_return co_await send_body(400, kJson);
}

template <class Stream>
asio::awaitable<After> Session<Stream>::respond() {
    const std::string_view target = request_.target;
    const std::string_view path = target.substr(0, target.find('?'));
    if (path.starts_with("/_sim/")) {
        co_return co_await serve_control(path);
    }
    request_number_ = state_->stats.requests.fetch_add(1, std::memory_order_relaxed) + 1;
    record_last_request();
    Plan plan;
    const std::string problem = plan_request(plan);
    if (!problem.empty()) {
        render_failure(400, problem, "invalid_simulator_header");
        co_return co_await send_body(400, kJson);
    }
    if (plan.faults.hang) {
        co_return co_await hang_until_closed();
    }
    if (plan.faults.garbage) {
        const bool sent = co_await write_raw(kGarbage);
        co_return sent ? After::close : After::drop;
    }
    if (plan.faults.status != 0) {
        render_fault(static_cast<unsigned>(plan.faults.status));
        co_return co_await send_body(static_cast<unsigned>(plan.faults.status), kJson);
    }
    if (anthropic()) {
        co_return co_await serve_anthropic(path, plan);
    }
    co_return co_await serve_api(path, plan);
}

template <class Stream>
asio::awaitable<After> Session<Stream>::serve_api(std::string_view path, Plan plan) {
    const bool post = request_.method == "POST";
    if (post && path == "/v1/chat/completions") {
        co_return co_await chat_completions(plan);
    }
    if (post && path == "/v1/completions") {
        co_return co_await completions(plan);
    }
    if (post && path == "/v1/embeddings") {
        co_return co_await embeddings(plan);
    }
    if (request_.method == "GET" && path == "/v1/models") {
        if (plan.faults.reset_after >= 0) {
            co_return reset_connection();
        }
        body_.assign(kModelsBody);
        co_return co_await send_body(200, kJson);
    }
    render_error(body_, "no such endpoint on the simulator", "invalid_request_error",
                 "not_found");
    co_return co_await send_body(404, kJson);
}

template <class Stream>
asio::awaitable<After> Session<Stream>::serve_control(std::string_view path) {
    const bool get = request_.method == "GET";
    if (get && path == "/_sim/stats") {
        render_stats(body_, state_->stats);
        co_return co_await send_body(200, kJson);
    }
    if (get && path == "/_sim/last_request") {
        bool found = false;
        {
            std::lock_guard lock(state_->last_mutex);
            found = state_->has_last;
            if (found) {
                render_last_request(body_, state_->last);
            }
        }
        if (!found) {
            render_failure(404, "no request received yet", "not_found");
        }
        co_return co_await send_body(found ? 200 : 404, kJson);
    }
    if (path == "/_sim/config" && (get || request_.method == "POST")) {
        const unsigned status = get ? 200 : configure();
        if (status == 200) {
            render_config();
        }
        co_return co_await send_body(status, kJson);
    }
    if (request_.method == "POST" && path == "/_sim/reset") {
        // active_streams is a gauge of live streams, not a counter: it is left alone.
        Stats& stats = state_->stats;
        for (auto* counter : {&stats.connections_accepted, &stats.requests,
                              &stats.streams_started, &stats.streams_completed,
                              &stats.streams_aborted, &stats.degraded_answers,
                              &stats.judge_replies}) {
            counter->store(0);
        }
        {
            std::lock_guard lock(state_->last_mutex);
            state_->has_last = false;
        }
        body_.assign(R"({"reset":true})");
        co_return co_await send_body(200, kJson);
    }
    render_failure(404, "no such simulator control endpoint", "not_found");
    co_return co_await send_body(404, kJson);
}

template <class Stream>
asio::awaitable<After> Session<Stream>::chat_completions(Plan plan) {
    arena_.clear();
    Document doc = arena_.make_document();
    if (!parse_body(doc)) {
        co_return co_await send_body(400, kJson);
    }
    const ChatRequest chat = read_chat_request(doc);
    if (state_->settings.role == Role::judge) {
        compose_verdict(doc);
        co_return co_await send_verdict(chat, plan);
    }
    plan.gen.degraded = !chat.tool && plan.gen.tokens > 0 &&
                        degraded_prompt(doc, state_->degrade_rate.load(std::memory_order_relaxed));
    if (plan.gen.degraded) {
        bump(state_->stats.degraded_answers);
    }
    if (chat.stream) {
        co_return co_await stream_chat(chat, plan);
    }
    if (plan.faults.reset_after >= 0) {
        co_return reset_connection();
    }
    co_await sleep_until(Clock::now() + generation_time(plan.gen));
    render_chat_completion(body_, new_reply(chat.model), plan.gen, chat.tool);
    co_return co_await send_body(200, kJson);
}

// Fills verdict_: prose without JSON (--judge-garbage), a refusal when the prompt lacks the
// answers' fences, or the verdict. Either of the first two is a judge error for the gateway.
template <class Stream>
void Session<Stream>::compose_verdict(const rapidjson::Value& request) {
    const Settings& settings = state_->settings;
    if (settings.judge_garbage) {
        verdict_.assign(kJudgeGarbage);
        return;
    }
    const std::string_view prompt = last_user_text(request, judge_prompt_);
    if (const auto verdict = judge_answers(prompt, settings.judge_score)) {
        render_verdict(verdict_, *verdict);
    } else {
        verdict_.assign(kJudgeRefusal);
    }
}

// Always a whole chat.completion, even when a stream was asked for: the gateway's judge call
// is not streamed. Paced like an answer of the verdict's length.
template <class Stream>
asio::awaitable<After> Session<Stream>::send_verdict(ChatRequest chat, Plan plan) {
    if (plan.faults.reset_after >= 0) {
        co_return reset_connection();
    }
    const std::size_t tokens = (verdict_.size() + 3) / 4;
    Generation timing = plan.gen;
    timing.tokens = tokens;
    co_await sleep_until(Clock::now() + generation_time(timing));
    render_judge_completion(body_, new_reply(chat.model), verdict_, tokens);
    bump(state_->stats.judge_replies);
    co_return co_await send_body(200, kJson);
}

// POST /_sim/config: a JSON object whose members (only `degrade_rate` so far) are checked
// all before any is applied. Returns the status; on failure the error body is in body_.
template <class Stream>
unsigned Session<Stream>::configure() {
    arena_.clear();
    Document doc = arena_.make_document();
    if (!parse_body(doc)) {
        return 400;
    }
    std::optional<double> rate;
    for (const auto& member : doc.GetObject()) {
        const std::string_view name(member.name.GetString(), member.name.GetStringLength());
        if (name != "degrade_rate") {
            problem_ = "unknown simulator setting '";
            problem_ += name;
            problem_ += "' (known: degrade_rate)";
            render_failure(400, problem_, "invalid_config");
            return 400;
        }
        if (!member.value.IsNumber() || !(member.value.GetDouble() >= 0) ||
            !(member.value.GetDouble() <= 1)) {
            render_failure(400, "degrade_rate: expected a number from 0 to 1", "invalid_config");
            return 400;
        }
        if (anthropic() || state_->settings.role != Role::answer) {
            render_failure(400, "degrade_rate applies to --kind openai --role answer only",
                           "invalid_config");
            return 400;
        }
        rate = member.value.GetDouble();
    }
    if (rate) {
        state_->degrade_rate.store(*rate, std::memory_order_relaxed);
    }
    return 200;
}

template <class Stream>
void Session<Stream>::render_config() {
    const Settings& settings = state_->settings;
    body_ = R"({"kind":)";
    append_json_string(body_, anthropic() ? "anthropic" : "openai");
    body_ += R"(,"role":)";
    append_json_string(body_, settings.role == Role::judge ? "judge" : "answer");
    body_ += R"(,"degrade_rate":)";
    append_double(body_, state_->degrade_rate.load(std::memory_order_relaxed));
    body_ += R"(,"judge_garbage":)";
    body_ += settings.judge_garbage ? "true" : "false";
    body_ += R"(,"judge_score":)";
    if (settings.judge_score >= 0) {
        append_number(body_, static_cast<std::uint64_t>(settings.judge_score));
    } else {
        body_ += "null";
    }
    body_ += '}';
}

template <class Stream>
asio::awaitable<After> Session<Stream>::completions(Plan plan) {
    arena_.clear();
    Document doc = arena_.make_document();
    if (!parse_body(doc)) {
        co_return co_await send_body(400, kJson);
    }
    if (plan.faults.reset_after >= 0) {
        co_return reset_connection();
    }
    co_await sleep_until(Clock::now() + generation_time(plan.gen));
    render_text_completion(body_, new_reply(string_member(doc, "model", kDefaultModel)),
                           plan.gen);
    co_return co_await send_body(200, kJson);
}

template <class Stream>
asio::awaitable<After> Session<Stream>::embeddings(Plan plan) {
    arena_.clear();
    Document doc = arena_.make_document();
    if (!parse_body(doc)) {
        co_return co_await send_body(400, kJson);
    }
    if (plan.faults.reset_after >= 0) {
        co_return reset_connection();
    }
    co_await sleep_until(Clock::now() + plan.gen.ttft);
    render_embeddings(body_, new_reply(string_member(doc, "model", kDefaultModel)),
                      embedding_inputs(doc), request_.body);
    co_return co_await send_body(200, kJson);
}

// The ttft delay comes before the response head, so it is also the time to the first byte: a
// gateway's first-byte timeout and failover can be tested with x-sim-ttft-ms.
template <class Stream>
asio::awaitable<After> Session<Stream>::stream_chat(ChatRequest chat, Plan plan) {
    const ActiveStream active(state_->stats);
    co_await sleep_until(Clock::now() + plan.gen.ttft);
    reply_ = new_reply(chat.model);
    chunk_prefix_.clear();
    append_reply_head(chunk_prefix_, "chatcmpl-sim-", "chat.completion.chunk", reply_);
    chunk_prefix_ += R"(,"choices":)";

    StreamStep step = co_await open_stream(chat);
    if (step == StreamStep::ok) {
        step = co_await stream_pieces(chat, plan);
    }
    if (step == StreamStep::ok) {
        step = co_await close_stream(chat, plan);
    }
    if (step == StreamStep::ok) {
        bump(state_->stats.streams_completed);
        co_return keep_alive_ ? After::next_request : After::close;
    }
    if (step == StreamStep::aborted) {
        bump(state_->stats.streams_aborted);
    }
    co_return After::drop;
}

template <class Stream>
asio::awaitable<StreamStep> Session<Stream>::open_stream(ChatRequest chat) {
    if (!co_await write_stream_head()) {
        co_return StreamStep::aborted;
    }
    begin_frame();
    if (chat.tool) {
        frame_ += R"([{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":)";
        append_tool_call(frame_, *chat.tool, "", true);
        frame_ += '}';
    } else {
        frame_ += R"([{"index":0,"delta":{"role":"assistant","content":""})";
    }
    end_frame("null");
    const bool sent = co_await write_frame(false);
    co_return sent ? StreamStep::ok : StreamStep::aborted;
}

// Content frames (tokens, or tool-call argument fragments) paced at tps from the first one.
template <class Stream>
asio::awaitable<StreamStep> Session<Stream>::stream_pieces(ChatRequest chat, Plan plan) {
    const std::size_t pieces = chat.tool ? kToolArgumentPieces : plan.gen.tokens;
    const Clock::time_point start = Clock::now();
    const std::chrono::duration<double> interval(plan.gen.tps > 0 ? 1.0 / plan.gen.tps : 0.0);
    for (std::size_t i = 0; i < pieces; ++i) {
        co_await sleep_until(start +
                             std::chrono::duration_cast<Clock::duration>(interval * i));
        if (static_cast<std::int64_t>(i) == plan.faults.reset_after) {
            reset_connection();
            co_return StreamStep::reset;
        }
        begin_frame();
        if (chat.tool) {
            frame_ += R"([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":")";
            append_escaped(frame_, tool_argument_piece(i));
            frame_ += R"("}}]})";
        } else {
            frame_ += R"([{"index":0,"delta":{"content":")";
            append_token(frame_, plan.gen, i);
            frame_ += R"("})";
        }
        end_frame("null");
        if (!co_await write_frame(false)) {
            co_return StreamStep::aborted;
        }
    }
    co_return StreamStep::ok;
}

template <class Stream>
asio::awaitable<StreamStep> Session<Stream>::close_stream(ChatRequest chat, Plan plan) {
    const std::size_t pieces = chat.tool ? kToolArgumentPieces : plan.gen.tokens;
    if (static_cast<std::int64_t>(pieces) == plan.faults.reset_after) {
        reset_connection();
        co_return StreamStep::reset;
    }
    begin_frame();
    frame_ += R"([{"index":0,"delta":{})";
    end_frame(chat.tool ? R"("tool_calls")" : R"("stop")");
    if (!co_await write_frame(false)) {
        co_return StreamStep::aborted;
    }
    if (chat.include_usage) {
        begin_frame();
        frame_ += "[],";
        append_usage(frame_, reply_.prompt_tokens, plan.gen.tokens);
        frame_ += "}\n\n";
        if (!co_await write_frame(false)) {
            co_return StreamStep::aborted;
        }
    }
    frame_.assign("data: [DONE]\n\n");
    const bool sent = co_await write_frame(true);
    co_return sent ? StreamStep::ok : StreamStep::aborted;
}

// ---------------------------------------------------------------------------------------------
// The session, --kind anthropic

template <class Stream>
asio::awaitable<After> Session<Stream>::serve_anthropic(std::string_view path, Plan plan) {
    const bool post = request_.method == "POST";
    if (post && path == "/v1/messages") {
        co_return co_await messages(plan, false);
    }
    if (post && path == "/v1/messages/count_tokens") {
        co_return co_await messages(plan, true);
    }
    if (request_.method == "GET" && path == "/v1/models") {
        if (const unsigned refused = check_anthropic_headers(); refused != 0) {
            co_return co_await send_body(refused, kJson);
        }
        if (plan.faults.reset_after >= 0) {
            co_return reset_connection();
        }
        body_.assign(kAnthropicModelsBody);
        co_return co_await send_body(200, kJson);
    }
    render_anthropic_error(body_, "not_found_error", "Not Found");
    co_return co_await send_body(404, kJson);
}

// Checked before the body, as the real API does. Returns the refusal's status (its body is in
// body_), or 0.
template <class Stream>
unsigned Session<Stream>::check_anthropic_headers() {
    if (request_.header("x-api-key").empty()) {
        render_anthropic_error(body_, "authentication_error", "x-api-key header is required");
        return 401;
    }
    const std::string_view version = request_.header("anthropic-version");
    if (version.empty()) {
        render_anthropic_error(body_, "invalid_request_error",
                               "anthropic-version: header is required");
        return 400;
    }
    if (version != "2023-06-01" && version != "2023-01-01") {
        problem_ = "anthropic-version: unsupported version '";
        problem_ += version;
        problem_ += '\'';
        render_anthropic_error(body_, "invalid_request_error", problem_);
        return 400;
    }
    return 0;
}

template <class Stream>
asio::awaitable<After> Session<Stream>::messages(Plan plan, bool count_only) {
    if (const unsigned refused = check_anthropic_headers(); refused != 0) {
        co_return co_await send_body(refused, kJson);
    }
    arena_.clear();
    Document doc = arena_.make_document();
    if (!parse_body(doc)) {
        co_return co_await send_body(400, kJson);
    }
    MessagesRequest request;
    if (!read_messages_request(doc, count_only, request, problem_)) {
        render_anthropic_error(body_, "invalid_request_error", problem_);
        co_return co_await send_body(400, kJson);
    }
    if (count_only) {
        body_ = R"({"input_tokens":)";
        append_number(body_, new_reply(request.model).prompt_tokens);
        body_ += '}';
        co_return co_await send_body(200, kJson);
    }
    const MessageAnswer answer = plan_answer(request, plan);
    if (request.stream) {
        co_return co_await stream_message(answer, plan);
    }
    if (plan.faults.reset_after >= 0) {
        co_return reset_connection();
    }
    // What a mid-stream overload looks like without a stream.
    if (plan.faults.stream_error >= 0) {
        render_anthropic_error(body_, "overloaded_error", "Overloaded");
        co_return co_await send_body(529, kJson);
    }
    Generation timing = plan.gen;
    timing.tokens = answer.deltas();
    co_await sleep_until(Clock::now() + generation_time(timing));
    render_message(body_, answer);
    co_return co_await send_body(200, kJson);
}

// Text answers are cut at max_tokens; a tool call (a fixed preamble and input) is not.
template <class Stream>
MessageAnswer Session<Stream>::plan_answer(const MessagesRequest& request,
                                           const Plan& plan) const {
    MessageAnswer answer;
    answer.reply = new_reply(request.model);
    answer.text = plan.gen;
    answer.tool = request.tool;
    if (request.tool) {
        answer.text.words = &state_->tool_preamble;
        answer.text.tokens = state_->tool_preamble.size();
        answer.stop_reason = "tool_use";
        answer.output_tokens = answer.text.tokens + kToolArgumentPieces;
    } else {
        answer.text.tokens = std::min(plan.gen.tokens, request.max_tokens);
        answer.stop_reason = plan.gen.tokens > request.max_tokens ? "max_tokens" : "end_turn";
        answer.output_tokens = answer.text.tokens;
    }
    // anthropic-beta is a comma-separated list, possibly over several header fields.
    bool beta_fast = false;
    for (std::size_t i = 0; i < request_.header_count; ++i) {
        const auto& [name, value] = request_.headers[i];
        beta_fast = beta_fast ||
                    (name == "anthropic-beta" && value.find("fast-mode") != std::string::npos);
    }
    answer.speed = answer_speed(request, beta_fast);
    return answer;
}

// Events in the real API's order: message_start, then per block content_block_start (a ping
// after the first), its deltas and content_block_stop, then message_delta and message_stop.
// Deltas are paced at tps from the first one and counted across blocks for the faults.
template <class Stream>
asio::awaitable<After> Session<Stream>::stream_message(MessageAnswer answer, Plan plan) {
    const ActiveStream active(state_->stats);
    co_await sleep_until(Clock::now() + plan.gen.ttft);
    StreamStep step = co_await open_message(answer);
    const Clock::time_point start = Clock::now();
    if (step == StreamStep::ok) {
        step = co_await stream_block(answer, plan, 0, start);
    }
    if (step == StreamStep::ok && answer.tool) {
        step = co_await stream_block(answer, plan, 1, start);
    }
    if (step == StreamStep::ok) {
        step = co_await close_message(answer, plan);
    }
    if (step == StreamStep::ok || step == StreamStep::ended) {
        bump(state_->stats.streams_completed);
        co_return keep_alive_ ? After::next_request : After::close;
    }
    if (step == StreamStep::aborted) {
        bump(state_->stats.streams_aborted);
    }
    co_return After::drop;
}

template <class Stream>
asio::awaitable<StreamStep> Session<Stream>::open_message(MessageAnswer answer) {
    if (!co_await write_stream_head()) {
        co_return StreamStep::aborted;
    }
    begin_event(frame_, "message_start");
    frame_ += R"(,"message":)";
    append_message_head(frame_, answer.reply);
    frame_ += R"([],"stop_reason":null,"stop_sequence":null,)";
    append_message_usage(frame_, answer.reply.prompt_tokens, 1, {});
    frame_ += '}';
    end_event(frame_);
    const bool sent = co_await write_frame(false);
    co_return sent ? StreamStep::ok : StreamStep::aborted;
}

// Block 0 is the text, block 1 the tool_use.
template <class Stream>
asio::awaitable<StreamStep> Session<Stream>::stream_block(MessageAnswer answer, Plan plan,
                                                          std::size_t block,
                                                          Clock::time_point start) {
    const bool text = block == 0;
    begin_event(frame_, "content_block_start");
    frame_ += R"(,"index":)";
    append_number(frame_, block);
    if (text) {
        frame_ += R"(,"content_block":{"type":"text","text":""})";
    } else {
        frame_ += R"(,"content_block":{"type":"tool_use","id":")";
        frame_ += kAnthropicToolId;
        frame_ += R"(","name":)";
        append_json_string(frame_, *answer.tool);
        frame_ += R"(,"input":{}})";
    }
    end_event(frame_);
    if (!co_await write_frame(false)) {
        co_return StreamStep::aborted;
    }
    if (text) {
        begin_event(frame_, "ping");
        end_event(frame_);
        if (!co_await write_frame(false)) {
            co_return StreamStep::aborted;
        }
    }
    const std::size_t first = text ? 0 : answer.text.tokens;
    const std::size_t count = text ? answer.text.tokens : kToolInputDeltas;
    const std::chrono::duration<double> interval(plan.gen.tps > 0 ? 1.0 / plan.gen.tps : 0.0);
    for (std::size_t i = 0; i < count; ++i) {
        co_await sleep_until(start +
                             std::chrono::duration_cast<Clock::duration>(interval * (first + i)));
        if (const StreamStep fault = co_await delta_fault(plan, first + i);
            fault != StreamStep::ok) {
            co_return fault;
        }
        begin_event(frame_, "content_block_delta");
        frame_ += R"(,"index":)";
        append_number(frame_, block);
        if (text) {
            frame_ += R"(,"delta":{"type":"text_delta","text":")";
            append_token(frame_, answer.text, i);
        } else {
            frame_ += R"(,"delta":{"type":"input_json_delta","partial_json":")";
            append_escaped(frame_, tool_input_piece(i));
        }
        frame_ += R"("})";
        end_event(frame_);
        if (!co_await write_frame(false)) {
            co_return StreamStep::aborted;
        }
    }
    begin_event(frame_, "content_block_stop");
    frame_ += R"(,"index":)";
    append_number(frame_, block);
    end_event(frame_);
    const bool sent = co_await write_frame(false);
    co_return sent ? StreamStep::ok : StreamStep::aborted;
}

template <class Stream>
asio::awaitable<StreamStep> Session<Stream>::close_message(MessageAnswer answer, Plan plan) {
    if (const StreamStep fault = co_await delta_fault(plan, answer.deltas());
        fault != StreamStep::ok) {
        co_return fault;
    }
    begin_event(frame_, "message_delta");
    frame_ += R"(,"delta":{"stop_reason":")";
    frame_ += answer.stop_reason;
    frame_ += R"(","stop_sequence":null},"usage":{"output_tokens":)";
    append_number(frame_, answer.output_tokens);
    if (!answer.speed.empty()) {
        frame_ += R"(,"speed":)";
        append_json_string(frame_, answer.speed);
    }
    frame_ += '}';
    end_event(frame_);
    if (!co_await write_frame(false)) {
        co_return StreamStep::aborted;
    }
    begin_event(frame_, "message_stop");
    end_event(frame_);
    const bool sent = co_await write_frame(true);
    co_return sent ? StreamStep::ok : StreamStep::aborted;
}

// Before delta number `delta` (or, when it equals the delta count, before message_delta): a
// TCP reset for x-sim-reset-after, or the real API's mid-stream `error` event, which ends the
// response cleanly, for x-sim-stream-error.
template <class Stream>
asio::awaitable<StreamStep> Session<Stream>::delta_fault(Plan plan, std::size_t delta) {
    const auto index = static_cast<std::int64_t>(delta);
    if (index == plan.faults.reset_after) {
        reset_connection();
        co_return StreamStep::reset;
    }
    if (index == plan.faults.stream_error) {
        frame_.assign(kOverloadedEvent);
        const bool sent = co_await write_frame(true);
        co_return sent ? StreamStep::ended : StreamStep::aborted;
    }
    co_return StreamStep::ok;
}

// ---------------------------------------------------------------------------------------------
// The session: writing, timing and bookkeeping

template <class Stream>
asio::awaitable<After> Session<Stream>::send_body(unsigned status, std::string_view content_type) {
    render_head(status, content_type, body_.size());
    lowest().expires_after(kWriteTimeout);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_)};
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
        co_return co_await write_raw(frame_);
    }
    std::array<char, 24> size_line{};
    auto [end, ec] = std::to_chars(size_line.data(), size_line.data() + 20, frame_.size(), 16);
    *end++ = '\r';
    *end++ = '\n';
    const std::string_view trailer = last ? "\r\n0\r\n\r\n"sv : "\r\n"sv;
    const std::array<asio::const_buffer, 3> buffers{
        asio::buffer(size_line.data(), static_cast<std::size_t>(end - size_line.data())),
        asio::buffer(frame_), asio::buffer(trailer)};
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
std::string Session<Stream>::plan_request(Plan& plan) {
    const Settings& settings = state_->settings;
    plan.faults = settings.faults;
    plan.gen = {settings.ttft, settings.tps, settings.tokens, &settings.words};
    for (std::size_t i = 0; i < request_.header_count; ++i) {
        const auto& [name, value] = request_.headers[i];
        if (name.starts_with("x-sim-") &&
            !apply_override(plan, std::string_view(name).substr(6), value)) {
            return "invalid value for header " + name + ": '" + value + "'";
        }
    }
    return {};
}

// Unknown x-sim-* headers are ignored, like unknown headers anywhere.
template <class Stream>
bool Session<Stream>::apply_override(Plan& plan, std::string_view key, std::string_view value) {
    std::int64_t number = 0;
    if (key == "status") {
        return parse_status(value, plan.faults.status);
    }
    if (key == "ttft-ms") {
        const bool ok = parse_bounded(value, 0, 86'400'000, number);
        plan.gen.ttft = std::chrono::milliseconds(number);
        return ok;
    }
    if (key == "tps") {
        return parse_rate(value, plan.gen.tps);
    }
    if (key == "tokens") {
        const bool ok = parse_bounded(value, 0, 1'000'000, number);
        plan.gen.tokens = static_cast<std::size_t>(number);
        return ok;
    }
    if (key == "text") {
        split_words(value, override_words_);
        plan.gen.words = &override_words_;
        return !override_words_.empty();
    }
    if (key == "reset-after") {
        return parse_bounded(value, -1, 1'000'000, plan.faults.reset_after);
    }
    if (key == "stream-error") {
        return parse_bounded(value, -1, 1'000'000, plan.faults.stream_error);
    }
    if (key == "hang") {
        return parse_flag(value, plan.faults.hang);
    }
    if (key == "garbage") {
        return parse_flag(value, plan.faults.garbage);
    }
    return true;
}

template <class Stream>
void Session<Stream>::record_last_request() {
    std::lock_guard lock(state_->last_mutex);
    state_->last.assign_from(request_);
    state_->has_last = true;
}

// On failure the 400 body is already in body_.
template <class Stream>
bool Session<Stream>::parse_body(Document& doc) {
    // The simulator answers hostile bodies like a real API: 400, never a stack overflow.
    const auto parsed = routing::check_json_input(request_.body);
    if (parsed) doc.Parse<rapidjson::kParseIterativeFlag>(request_.body.data(), request_.body.size());
    if (parsed && !doc.HasParseError() && doc.IsObject()) {
        return true;
    }
    render_failure(400,
                   parsed ? std::string_view("the request body is not a JSON object")
                          : routing::describe(parsed.error),
                   "invalid_json");
    return false;
}

// The error body in the kind's shape: OpenAI's with `code`, or Anthropic's typed by status.
template <class Stream>
void Session<Stream>::render_failure(unsigned status, std::string_view message,
                                     std::string_view code) {
    if (anthropic()) {
        render_anthropic_error(body_, anthropic_error_type(status), message);
    } else {
        render_error(body_, message, "invalid_request_error", code);
    }
}

template <class Stream>
void Session<Stream>::render_fault(unsigned status) {
    if (anthropic()) {
        const std::string_view type = anthropic_error_type(status);
        render_anthropic_error(body_, type, anthropic_fault_message(type));
    } else {
        body_.assign(kSimulatedFailure);
    }
}

template <class Stream>
Reply Session<Stream>::new_reply(std::string_view model) const {
    Reply reply;
    reply.id = state_->stats.next_id.fetch_add(1, std::memory_order_relaxed) + 1;
    reply.created = static_cast<std::int64_t>(std::time(nullptr));
    reply.model = model;
    reply.prompt_tokens = (request_.body.size() + 3) / 4;
    return reply;
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

template <class Stream>
void Session<Stream>::begin_frame() {
    frame_ = "data: ";
    frame_ += chunk_prefix_;
}

template <class Stream>
void Session<Stream>::end_frame(std::string_view finish_reason) {
    frame_ += R"(,"logprobs":null,"finish_reason":)";
    frame_ += finish_reason;
    frame_ += "}]}\n\n";
}

template class Session<beast::tcp_stream>;
template class Session<TlsStream>;

template <class Stream>
asio::awaitable<void> run_session(tcp::socket socket, std::shared_ptr<SimState> state) {
    Session<Stream> session(std::move(socket), std::move(state));
    co_await session.run();
}

// ---------------------------------------------------------------------------------------------
// Listening

void spawn_session(tcp::socket socket, const std::shared_ptr<SimState>& state) {
    const auto executor = socket.get_executor();
    if (state->tls) {
        asio::co_spawn(executor, run_session<TlsStream>(std::move(socket), state), asio::detached);
    } else {
        asio::co_spawn(executor, run_session<beast::tcp_stream>(std::move(socket), state),
                       asio::detached);
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor acceptor, std::shared_ptr<SimState> state) {
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
        spawn_session(std::move(socket), state);
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

// ---------------------------------------------------------------------------------------------
// Command line

constexpr std::string_view kUsage =
    "usage: turnout simulate --listen HOST:PORT [--kind openai|anthropic] [--threads N]\n"
    "         [--ttft DURATION] [--tps N] [--tokens N] [--text TEXT] [--fault-status CODE]\n"
    "         [--fault-reset-after N] [--fault-stream-error N] [--fault-hang]\n"
    "         [--tls-cert FILE --tls-key FILE]\n"
    "         [--role answer|judge] [--degrade-rate R] [--judge-score N] [--judge-garbage]\n"
    "  --role judge (openai kind): /v1/chat/completions judges a turnout judge prompt: B\n"
    "    tagged [degraded] scores 40, B == A 100, otherwise 97; --judge-score forces a score,\n"
    "    --judge-garbage answers prose without JSON; missing fences get a refusal.\n"
    "  --degrade-rate R (openai kind, role answer): a stable share R (0..1) of prompts, by a\n"
    "    hash of `messages`, get ' [degraded]' appended; POST /_sim/config\n"
    "    {\"degrade_rate\": R} changes it at run time.\n";

tcp::endpoint parse_endpoint(std::string_view text) {
    const std::size_t colon = text.rfind(':');
    std::uint16_t port = 0;
    if (colon == std::string_view::npos || !parse_integer(text.substr(colon + 1), port)) {
        throw std::invalid_argument("--listen: expected HOST:PORT, got '" + std::string(text) +
                                    "'");
    }
    std::string host(text.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (host.empty()) {
        return {asio::ip::address_v4::any(), port};
    }
    error_code ec;
    const asio::ip::address address = asio::ip::make_address(host, ec);
    if (!ec) {
        return {address, port};
    }
    asio::io_context context;
    tcp::resolver resolver(context);
    const auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
        throw std::invalid_argument("--listen: cannot resolve '" + host + "'");
    }
    for (const auto& entry : results) {
        if (entry.endpoint().address().is_v4()) {
            return entry.endpoint();
        }
    }
    return results.begin()->endpoint();
}

[[noreturn]] void bad_value(std::string_view option, std::string_view value,
                            std::string_view expected) {
    throw std::invalid_argument(std::string(option) + ": expected " + std::string(expected) +
                                ", got '" + std::string(value) + "'");
}

void apply_option(Settings& settings, std::string& text, std::string_view option,
                  std::string_view value) {
    std::int64_t number = 0;
    if (option == "--listen") {
        settings.listen = parse_endpoint(value);
    } else if (option == "--kind") {
        if (value == "openai") {
            settings.kind = Kind::openai;
        } else if (value == "anthropic") {
            settings.kind = Kind::anthropic;
        } else {
            bad_value(option, value, "openai or anthropic");
        }
    } else if (option == "--threads") {
        if (!parse_bounded(value, 1, 256, number)) {
            bad_value(option, value, "a thread count from 1 to 256");
        }
        settings.threads = static_cast<unsigned>(number);
    } else if (option == "--ttft") {
        if (!parse_duration(value, settings.ttft)) {
            bad_value(option, value, "a duration like 50ms or 2s");
        }
    } else if (option == "--tps") {
        if (!parse_rate(value, settings.tps)) {
            bad_value(option, value, "tokens per second: 0 or at least 0.001");
        }
    } else if (option == "--tokens") {
        if (!parse_bounded(value, 0, 1'000'000, number)) {
            bad_value(option, value, "a token count from 0 to 1000000");
        }
        settings.tokens = static_cast<std::size_t>(number);
    } else if (option == "--text") {
        text = value;
    } else if (option == "--fault-status") {
        if (!parse_status(value, settings.faults.status)) {
            bad_value(option, value, "an HTTP status from 200 to 599");
        }
    } else if (option == "--fault-reset-after") {
        if (!parse_bounded(value, 0, 1'000'000, settings.faults.reset_after)) {
            bad_value(option, value, "a frame count");
        }
    } else if (option == "--fault-stream-error") {
        if (!parse_bounded(value, 0, 1'000'000, settings.faults.stream_error)) {
            bad_value(option, value, "a delta count");
        }
    } else if (option == "--tls-cert") {
        settings.tls_cert = value;
    } else if (option == "--tls-key") {
        settings.tls_key = value;
    } else if (option == "--role") {
        if (value == "answer") {
            settings.role = Role::answer;
        } else if (value == "judge") {
            settings.role = Role::judge;
        } else {
            bad_value(option, value, "answer or judge");
        }
    } else if (option == "--degrade-rate") {
        if (!parse_share(value, settings.degrade_rate)) {
            bad_value(option, value, "a share from 0 to 1");
        }
    } else if (option == "--judge-score") {
        if (!parse_bounded(value, 0, 100, number)) {
            bad_value(option, value, "a score from 0 to 100");
        }
        settings.judge_score = static_cast<int>(number);
    } else {
        throw std::invalid_argument("unknown option '" + std::string(option) + "'");
    }
}

void check_roles(const Settings& settings) {
    if (settings.kind == Kind::anthropic &&
        (settings.role == Role::judge || settings.degrade_rate > 0)) {
        throw std::invalid_argument("--role judge and --degrade-rate need --kind openai");
    }
    if (settings.role == Role::judge && settings.degrade_rate > 0) {
        throw std::invalid_argument("--degrade-rate applies to --role answer");
    }
    if (settings.role != Role::judge &&
        (settings.judge_garbage || settings.judge_score >= 0)) {
        throw std::invalid_argument("--judge-score and --judge-garbage need --role judge");
    }
}

/// nullopt: --help was asked for.
std::optional<Settings> parse_command_line(int argc, char** argv) {
    Settings settings;
    std::string text(kDefaultText);
    bool have_listen = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            return std::nullopt;
        }
        if (arg == "--fault-hang") {
            settings.faults.hang = true;
            continue;
        }
        if (arg == "--judge-garbage") {
            settings.judge_garbage = true;
            continue;
        }
        // Both `--name value` and `--name=value`.
        const std::size_t equals = arg.find('=');
        const std::string_view option = arg.substr(0, equals);
        std::string_view value;
        if (equals != std::string_view::npos) {
            value = arg.substr(equals + 1);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            throw std::invalid_argument(std::string(option) + " needs a value");
        }
        apply_option(settings, text, option, value);
        have_listen = have_listen || option == "--listen";
    }
    if (!have_listen) {
        throw std::invalid_argument("--listen HOST:PORT is required");
    }
    if (settings.tls_cert.empty() != settings.tls_key.empty()) {
        throw std::invalid_argument("--tls-cert and --tls-key go together");
    }
    check_roles(settings);
    split_words(text, settings.words);
    if (settings.words.empty()) {
        throw std::invalid_argument("--text needs at least one word");
    }
    return settings;
}

std::shared_ptr<SimState> make_state(Settings settings) {
    auto state = std::make_shared<SimState>();
    if (!settings.tls_cert.empty()) {
        state->tls.emplace(ssl::context::tls_server);
        error_code ec;
        state->tls->use_certificate_chain_file(settings.tls_cert, ec);
        if (ec) {
            throw std::runtime_error("--tls-cert " + settings.tls_cert + ": " + ec.message());
        }
        state->tls->use_private_key_file(settings.tls_key, ssl::context::pem, ec);
        if (ec) {
            throw std::runtime_error("--tls-key " + settings.tls_key + ": " + ec.message());
        }
    }
    state->degrade_rate.store(settings.degrade_rate);
    state->settings = std::move(settings);
    split_words(kToolPreamble, state->tool_preamble);
    return state;
}

/// Binds every acceptor (the first one picks the port when it is 0) and starts accepting;
/// returns the bound endpoint.
tcp::endpoint start_listening(std::vector<std::unique_ptr<asio::io_context>>& contexts,
                              const std::shared_ptr<SimState>& state) {
    tcp::endpoint bound = state->settings.listen;
    try {
        check_port_free(*contexts.front(), bound);
        for (auto& context : contexts) {
            tcp::acceptor acceptor = open_acceptor(*context, bound);
            bound = acceptor.local_endpoint();
            asio::co_spawn(*context, accept_loop(std::move(acceptor), state), asio::detached);
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
        std::optional<Settings> settings = parse_command_line(argc, argv);
        if (!settings) {
            std::cout << kUsage;
            return 0;
        }
        state = make_state(std::move(*settings));
        for (unsigned i = 0; i < state->settings.threads; ++i) {
            contexts.push_back(std::make_unique<asio::io_context>(1));
        }
        bound = start_listening(contexts, state);
    } catch (const std::invalid_argument& e) {
        std::cerr << "turnout simulate: " << e.what() << "\n" << kUsage;
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

}  // namespace turnout::gateway
