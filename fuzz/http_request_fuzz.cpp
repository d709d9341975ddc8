// The request head and framing checks, as gateway/session.cpp reads a client request:
// Beast's request_parser<string_body> under the gateway's header and body limits, then
// check_request_framing and the hop-by-hop header filter on what parsed. The bytes are parsed
// twice: in one buffer, and arriving in pieces of a size the input chooses (Beast's need_more
// path, chunk framing split across reads); both parses must agree.
// Beast's assertions stay on, through a handler that knows one false one (below).
#define BOOST_ENABLE_ASSERT_HANDLER
#include <boost/assert.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace boost {

// Beast 1.81 asserts `n >= 5` in basic_parser::parse_chunk_header when a final chunk arrives
// split across reads ("0\r\n", then "\r", then "\n"); the code after it is right (it asks for
// more bytes), and Beast removed the assertion (boostorg/beast#2861, Boost 1.86). Release
// builds (NDEBUG) are unaffected; corpus/http_request/chunk_final_split_beast_assert is the case.
void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file,
                          long line) {
    if (std::strcmp(expr, "n >= 5") == 0 &&
        std::strstr(function, "parse_chunk_header") != nullptr) {
        return;
    }
    std::fprintf(stderr, "%s:%ld: %s: Assertion '%s' failed%s%s\n", file, line, function, expr,
                 msg != nullptr ? ": " : "", msg != nullptr ? msg : "");
    std::abort();
}
void assertion_failed(char const* expr, char const* function, char const* file, long line) {
    assertion_failed_msg(expr, nullptr, function, file, line);
}

}  // namespace boost

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "protocol/framing.hpp"
#include "protocol/hop_headers.hpp"

namespace http = boost::beast::http;
using turnout::protocol::HeaderView;

namespace {

struct Outcome {
    bool header_done = false;
    bool framing_ok = false;
    bool done = false;
    std::string body;
};

/// Feeds `input` to a parser `step` bytes at a time (0: all at once), the way async_read
/// feeds what the socket returned; the end of the input is the client closing.
Outcome parse(std::string_view input, std::size_t step) {
    const turnout::config::LimitsConfig limits;  // the gateway's defaults
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);

    Outcome outcome;
    std::size_t consumed = 0;
    std::size_t available = step == 0 ? input.size() : std::min(step, input.size());
    boost::beast::error_code ec;
    bool checked = false;
    while (!parser.is_done()) {
        const auto n =
            parser.put(boost::asio::buffer(input.data() + consumed, available - consumed), ec);
        consumed += n;
        if (ec == http::error::need_more || (!ec && n == 0)) {
            if (available == input.size()) {
                // The client closed: as Beast's read does, end_of_stream before any byte.
                if (!parser.got_some()) return outcome;
                parser.put_eof(ec);
                if (ec) return outcome;
                break;
            }
            available = std::min(input.size(), available + (step == 0 ? input.size() : step));
            ec = {};
            continue;
        }
        if (ec) return outcome;
        if (parser.is_header_done() && !checked) {
            checked = true;
            outcome.header_done = true;
            const auto& head = parser.get();
            std::vector<HeaderView> fields;
            turnout::protocol::ConnectionTokens connection;
            for (const auto& field : head) {
                fields.emplace_back(field.name_string(), field.value());
                if (turnout::protocol::iequals(field.name_string(), "connection")) {
                    connection.add_connection_value(field.value());
                }
            }
            for (const auto& [name, value] : fields) {
                (void)turnout::protocol::forward_request_header(name, connection);
            }
            const auto verdict = turnout::protocol::check_request_framing(head.version(), fields);
            if (!verdict.ok) return outcome;  // the gateway answers the error and closes
            outcome.framing_ok = true;
        }
    }
    outcome.done = parser.is_done();
    if (outcome.done) {
        auto request = parser.release();
        if (request.body().size() > limits.max_body_bytes) std::abort();
        (void)request.keep_alive();
        (void)request.target();
        outcome.body = std::move(request.body());
    }
    return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const Outcome whole = parse(input, 0);
    // The piece size comes from the input's length, so a mutation that changes the length also
    // changes where the reads split; 1-byte reads are the hardest case for the parser.
    const std::size_t step = 1 + size % 61;
    const Outcome pieces = parse(input, step);
    // A parse must not depend on how the bytes were split across reads.
    if (whole.framing_ok != pieces.framing_ok || whole.done != pieces.done ||
        whole.body != pieces.body) {
        std::abort();
    }
    return 0;
}
