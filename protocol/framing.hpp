#pragma once
/// HTTP/1.1 request framing checks beyond what Beast 1.81 enforces (request smuggling
/// defences, RFC 9112 section 6). Plain C++: the caller passes the header fields as views.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::protocol {

using HeaderView = std::pair<std::string_view, std::string_view>;  ///< name, value as received

struct FramingVerdict {
    bool ok = true;
    std::string reason;     ///< for the 400 message and the log, e.g. "both Content-Length and
                            ///< Transfer-Encoding"
    unsigned status = 400;  ///< 505 for an HTTP version other than 1.0 and 1.1
};

/// `version` is Beast's encoding (10 for HTTP/1.0, 11 for HTTP/1.1). Rejects: any other
/// version (505); a missing Host in HTTP/1.1 or more than one Host field (RFC 9112 3.2: which
/// one names the origin is ambiguous); Content-Length together with
/// Transfer-Encoding; a Transfer-Encoding that is not exactly one `chunked` (case-insensitive,
/// surrounding whitespace allowed); more than one Transfer-Encoding field; chunked in HTTP/1.0;
/// more than one Content-Length field or a comma list (even of equal values); a Content-Length
/// that is empty, not all digits, or does not fit in 64 bits.
FramingVerdict check_request_framing(unsigned version, const std::vector<HeaderView>& headers);

}  // namespace turnout::protocol
