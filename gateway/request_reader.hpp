#pragma once
/// Reading one client request under the limits, over any stream (a beast::tcp_stream in the
/// gateway, a beast::test::stream in the unit tests). The reader decides what the client is
/// owed; the session writes it (Session::send_error), so every answer leaves from one place.
///
/// Includes Beast: include it only from the session's translation units. The template's
/// definition is in request_reader_impl.hpp; request_reader.cpp instantiates it for
/// beast::tcp_stream.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/errors.hpp"
#include "gateway/request_record.hpp"
#include "upstream/asio_names.hpp"

namespace turnout::gateway {

/// The session files' one completion token: network errors are values.
inline constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
inline constexpr std::string_view kRequestIdHeader = "x-request-id";
/// Bytes asked of the stream per read.
inline constexpr std::size_t kReadChunk = 16 * 1024;
/// Longer request targets get 414, as with nginx's default large_client_header_buffers.
inline constexpr std::size_t kMaxTargetBytes = 8 * 1024;

struct ReadLimits {
    std::uint64_t max_header_bytes = 0;  ///< the head (and a chunk line, and trailers): 431
    std::uint64_t max_body_bytes = 0;    ///< the body: 413
};

/// Unparsed request bytes held at once: a header block (and a chunk line, and trailers) can
/// be no longer than max_header_bytes, plus one read.
std::size_t request_buffer_limit(const ReadLimits& limits);

/// What reading one request came to.
struct ReadOutcome {
    enum class Kind {
        request,  ///< a whole request, in the parser, trailers dropped from its fields
        answer,   ///< refused: the client is owed the error `code` with `message`
        gone,     ///< nothing to answer: the peer left, or the stream failed
    };
    Kind kind = Kind::gone;
    errc code = errc::bad_request;  ///< answer: the error to send
    std::string message;            ///< answer: its message
    bool close = true;              ///< answer: close the connection after it
    /// The I/O or parse error that ended the reading (none for a complete request or a
    /// refused head).
    boost::system::error_code error;
};

/// Reads one request into `parser` (fresh) under `limits`: the head, its checks (431, 414,
/// framing: 400 / 505), an interim `100 Continue` written to the stream when the client
/// expects one, then the body (413; chunk lines and trailers bounded: 400). Fills the
/// record's method, path, request id (the client's x-request-id when acceptable) and bytes_in.
///
/// `timed_out` is the caller's request timer: set before the timer cancels the stream, it
/// turns the failed operation into a 408; null when there is no timer. Every pointer must
/// outlive the call.
template <class Stream>
asio::awaitable<ReadOutcome> read_request(Stream* stream, beast::flat_buffer* buffer,
                                          http::request_parser<http::string_body>* parser,
                                          ReadLimits limits, const bool* timed_out,
                                          RequestRecord* record);

extern template asio::awaitable<ReadOutcome> read_request<beast::tcp_stream>(
    beast::tcp_stream*, beast::flat_buffer*, http::request_parser<http::string_body>*, ReadLimits,
    const bool*, RequestRecord*);

}  // namespace turnout::gateway
