#pragma once
/// The definition of read_request (request_reader.hpp): included by request_reader.cpp, which
/// instantiates it for beast::tcp_stream, and by the unit tests, for beast::test::stream.

#include <algorithm>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <cstddef>
#include <optional>
#include <tuple>
#include <utility>

#include "gateway/request_reader.hpp"

namespace turnout::gateway {
namespace reader_detail {

/// The head's own checks, once Beast has parsed it: records the method, path and request id,
/// then the head's size (431), the target's length (414) and the framing (400 / 505). A
/// refusal, or none when the body may be read.
std::optional<ReadOutcome> check_head(const http::request_header<>& head, std::size_t head_bytes,
                                      const ReadLimits& limits, RequestRecord& record);

/// What the client is owed when reading stopped on `error`: a 408 when the caller's timer
/// fired, the limit or the malformation that Beast reported, or nothing (the peer left).
ReadOutcome failed_read(boost::system::error_code error, bool timed_out, bool header_done);

}  // namespace reader_detail

template <class Stream>
asio::awaitable<ReadOutcome> read_request(Stream* stream, beast::flat_buffer* buffer,
                                          http::request_parser<http::string_body>* parser,
                                          ReadLimits limits, const bool* timed_out,
                                          RequestRecord* record) {
    parser->header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser->body_limit(limits.max_body_bytes);
    buffer->max_size(std::max(request_buffer_limit(limits), buffer->size()));
    auto [ec, n] = co_await http::async_read_header(*stream, *buffer, *parser, kToken);
    // A chunked body's trailers: Beast adds them to the fields, a repeated name next to the
    // head's field of that name. They are not forwarded (nginx ignores them too), so nothing
    // the client sends late can pose as a header that routing, authentication or the upstream
    // would read: the head is kept as it was and put back.
    std::optional<http::request_header<>> head_only;
    if (!ec) {
        const auto& head = parser->get();
        if (auto refusal = reader_detail::check_head(head, n, limits, *record)) {
            co_return std::move(*refusal);
        }
        if (parser->chunked()) head_only.emplace(head.base());
        if (head[http::field::expect] == "100-continue") {
            http::response<http::empty_body> go_on{http::status::continue_, 11};
            auto [write_ec, written] = co_await http::async_write(*stream, go_on, kToken);
            ec = write_ec;
        }
        if (!ec) std::tie(ec, n) = co_await http::async_read(*stream, *buffer, *parser, kToken);
    }
    if (record->request_id.empty()) record->request_id = new_request_id();
    if (ec) {
        co_return reader_detail::failed_read(ec, timed_out != nullptr && *timed_out,
                                             parser->is_header_done());
    }
    auto& request = parser->get();
    if (head_only) request.base() = std::move(*head_only);
    record->bytes_in = request.body().size();
    ReadOutcome whole;
    whole.kind = ReadOutcome::Kind::request;
    co_return whole;
}

}  // namespace turnout::gateway
