#include "protocol/framing.hpp"

#include <cstdint>
#include <limits>
#include <optional>

#include "protocol/hop_headers.hpp"

namespace turnout::protocol {
namespace {

enum class LengthError { none, invalid, too_large };

// Digits only: no sign, no base prefix, no list, so that every hop in a chain of proxies reads
// the same number (std::stoull and strtoull accept "+5", " 5" and "0x10" in various ways).
LengthError check_content_length(std::string_view value) {
    value = trim_ows(value);
    if (value.empty()) return LengthError::invalid;
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t n = 0;
    bool too_large = false;
    for (char c : value) {
        if (c < '0' || c > '9') return LengthError::invalid;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        // Keep scanning after an overflow: "99999999999999999999x" is invalid, not too large.
        if (n > (kMax - digit) / 10) too_large = true;
        if (!too_large) n = n * 10 + digit;
    }
    return too_large ? LengthError::too_large : LengthError::none;
}

FramingVerdict reject(std::string reason) { return FramingVerdict{false, std::move(reason), 400}; }

}  // namespace

FramingVerdict check_request_framing(unsigned version, const std::vector<HeaderView>& headers) {
    if (version != 10 && version != 11) {
        return FramingVerdict{false, "HTTP version not supported", 505};
    }
    std::optional<std::string_view> content_length;
    std::optional<std::string_view> transfer_encoding;
    unsigned hosts = 0;
    for (const auto& [name, value] : headers) {
        if (iequals(name, "host")) {
            if (++hosts > 1) return reject("multiple Host fields");
        } else if (iequals(name, "content-length")) {
            // Equal duplicates are legal per RFC 9112 6.3, but a peer that picks the other one
            // is exactly how smuggling starts; one field is all a well-behaved client sends.
            if (content_length) return reject("multiple Content-Length fields");
            content_length = value;
        } else if (iequals(name, "transfer-encoding")) {
            if (transfer_encoding) return reject("multiple Transfer-Encoding fields");
            transfer_encoding = value;
        }
    }

    if (hosts == 0 && version == 11) return reject("missing Host field");
    if (content_length && transfer_encoding) {
        return reject("both Content-Length and Transfer-Encoding");
    }
    if (transfer_encoding) {
        // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing (1.0 has no chunking).
        if (version < 11) return reject("Transfer-Encoding in HTTP/1.0");
        // Only a lone "chunked" is unambiguous: a request body cannot be gzip-decoded here, and
        // "chunked, chunked" or parameters are read differently by different parsers.
        if (!iequals(trim_ows(*transfer_encoding), "chunked")) {
            return reject("Transfer-Encoding is not exactly chunked");
        }
    }
    if (content_length) {
        switch (check_content_length(*content_length)) {
            case LengthError::invalid:
                return reject("invalid Content-Length");
            case LengthError::too_large:
                return reject("Content-Length does not fit in 64 bits");
            case LengthError::none:
                break;
        }
    }
    return FramingVerdict{};
}

}  // namespace turnout::protocol
