// Reading one request under the limits: the checks that need no stream, and the reader
// instantiated for the gateway's connections (request_reader.hpp has the map).

#include <vector>

#include "base/logging.hpp"
#include "gateway/request_reader_impl.hpp"
#include "protocol/framing.hpp"

namespace turnout::gateway {
namespace {

using base::gateway_log;
using base::log_event;

ReadOutcome refusal(errc code, std::string message, boost::system::error_code error = {}) {
    ReadOutcome outcome;
    outcome.kind = ReadOutcome::Kind::answer;
    outcome.code = code;
    outcome.message = std::move(message);
    outcome.close = true;
    outcome.error = error;
    return outcome;
}

ReadOutcome rejected_head(errc code, std::string message, std::string_view reason,
                          const RequestRecord& record) {
    log_event(gateway_log(), spdlog::level::warn, "rejected request head",
              {{"request_id", record.request_id}, {"reason", reason}});
    return refusal(code, std::move(message));
}

}  // namespace

std::size_t request_buffer_limit(const ReadLimits& limits) {
    return static_cast<std::size_t>(limits.max_header_bytes) + kReadChunk;
}

namespace reader_detail {

std::optional<ReadOutcome> check_head(const http::request_header<>& head, std::size_t head_bytes,
                                      const ReadLimits& limits, RequestRecord& record) {
    record.method = std::string(head.method_string());
    record.path = std::string(head.target().substr(0, head.target().find('?')));
    const auto id = head[kRequestIdHeader];
    record.request_id_from_client = acceptable_request_id(id);
    record.request_id = record.request_id_from_client ? std::string(id) : new_request_id();
    // Beast bounds the request line and the fields each by the limit: bound their sum.
    if (head_bytes > limits.max_header_bytes) {
        return rejected_head(errc::headers_too_large, "request header block too large",
                             "header block too large", record);
    }
    if (head.target().size() > kMaxTargetBytes) {
        return rejected_head(errc::uri_too_long, "request target too long",
                             "request target too long", record);
    }
    std::vector<protocol::HeaderView> fields;
    for (const auto& field : head) fields.emplace_back(field.name_string(), field.value());
    const protocol::FramingVerdict verdict =
        protocol::check_request_framing(head.version(), fields);
    if (!verdict.ok) {
        log_event(gateway_log(), spdlog::level::warn, "rejected request framing",
                  {{"request_id", record.request_id}, {"reason", verdict.reason}});
        return refusal(verdict.status == 505 ? errc::version_not_supported : errc::bad_request,
                       verdict.reason);
    }
    return std::nullopt;
}

ReadOutcome failed_read(boost::system::error_code error, bool timed_out, bool header_done) {
    if (timed_out) return refusal(errc::request_timeout, "request not received in time", error);
    if (error == http::error::header_limit) {
        return refusal(errc::headers_too_large, "request header block too large", error);
    }
    if (error == http::error::body_limit) {
        return refusal(errc::request_too_large, "request body too large", error);
    }
    if (error == http::error::bad_version) {
        return refusal(errc::version_not_supported, "HTTP version not supported", error);
    }
    if (error == http::error::buffer_overflow) {
        // More unparsed bytes than a header block may hold: the head itself, or a chunk line
        // (extensions) or trailers of a chunked body.
        return header_done
                   ? refusal(errc::bad_request, "chunk extensions or trailers too long", error)
                   : refusal(errc::headers_too_large, "request header block too large", error);
    }
    if (error.category() == http::make_error_code(http::error::end_of_stream).category() &&
        error != http::error::end_of_stream && error != http::error::partial_message) {
        return refusal(errc::bad_request, "malformed HTTP request: " + error.message(), error);
    }
    ReadOutcome gone;
    gone.error = error;
    return gone;
}

}  // namespace reader_detail

template asio::awaitable<ReadOutcome> read_request<beast::tcp_stream>(
    beast::tcp_stream*, beast::flat_buffer*, http::request_parser<http::string_body>*, ReadLimits,
    const bool*, RequestRecord*);

}  // namespace turnout::gateway
