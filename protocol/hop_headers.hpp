#pragma once
/// Which headers cross the proxy. Hop-by-hop headers (RFC 9110 section 7.6.1: Connection,
/// Proxy-Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, plus every field
/// named in Connection) are stripped in both directions. Plain C++, case-insensitive.

#include <string>
#include <string_view>
#include <vector>

namespace turnout::protocol {

/// Lower-cased tokens of all Connection header values ("close, X-Foo" -> {"close","x-foo"}).
class ConnectionTokens {
  public:
    void add_connection_value(std::string_view value);
    bool names(std::string_view header_name) const;  ///< case-insensitive

  private:
    std::vector<std::string> tokens_;
};

bool is_hop_by_hop(std::string_view name);  ///< the fixed RFC list only, case-insensitive

/// Client request header -> upstream? Also drops what the gateway owns or must never pass on:
/// Host, Content-Length (recomputed), Authorization, Proxy-Authorization and x-api-key (client
/// credentials), Accept-Encoding (the gateway reads bodies, so it asks for identity), Expect;
/// the client-asserted addresses Forwarded, X-Real-IP and X-Forwarded-*; and any name with an
/// underscore.
bool forward_request_header(std::string_view name, const ConnectionTokens& connection);

/// Upstream response header -> client? Also drops Content-Length (the gateway frames the
/// answer itself) and the upstream's own x-request-id (the gateway's wins).
bool forward_response_header(std::string_view name, const ConnectionTokens& connection);

bool iequals(std::string_view a, std::string_view b);

/// `s` without the optional white space around a field value or list element: RFC 9110
/// section 5.6.3's OWS is spaces and horizontal tabs only. Anything else (CR, VT, NUL) is left
/// in place, so that the strict checks reject it.
std::string_view trim_ows(std::string_view s);

}  // namespace turnout::protocol
