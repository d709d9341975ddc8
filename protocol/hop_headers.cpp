#include "protocol/hop_headers.hpp"

#include <algorithm>
#include <array>

namespace turnout::protocol {
namespace {

// ASCII only, by hand: std::tolower depends on the global locale and is undefined for
// negative chars, and header names are ASCII tokens anyway.
char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

template <std::size_t N>
bool is_one_of(std::string_view name, const std::array<std::string_view, N>& names) {
    return std::any_of(names.begin(), names.end(),
                       [name](std::string_view candidate) { return iequals(name, candidate); });
}

constexpr std::array<std::string_view, 7> kHopByHop = {
    "connection", "proxy-connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
};

// The gateway sets these itself; the client's credentials authenticate it to the gateway and
// must never reach a provider.
constexpr std::array<std::string_view, 7> kGatewayOwnedRequest = {
    "host",   "content-length",      "authorization", "x-api-key", "accept-encoding",
    "expect", "proxy-authorization",
};

// Client-asserted addresses: a provider (or a proxy in front of it) could trust them for rate
// limits or logs. turnout sends none of its own either: a client's address is not the
// provider's business.
constexpr std::array<std::string_view, 2> kClientAddressRequest = {"forwarded", "x-real-ip"};
constexpr std::string_view kForwardedPrefix = "x-forwarded-";

constexpr std::array<std::string_view, 2> kGatewayOwnedResponse = {"content-length",
                                                                   "x-request-id"};

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    const auto same = [](char x, char y) { return ascii_lower(x) == ascii_lower(y); };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), same);
}

void ConnectionTokens::add_connection_value(std::string_view value) {
    while (!value.empty()) {
        const auto comma = value.find(',');
        const auto token = trim_ows(value.substr(0, comma));
        // RFC 9110 5.6.1: empty list elements (", ,close") are allowed and mean nothing.
        if (!token.empty()) {
            std::string lowered(token);
            std::transform(lowered.begin(), lowered.end(), lowered.begin(), ascii_lower);
            tokens_.push_back(std::move(lowered));
        }
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
}

bool ConnectionTokens::names(std::string_view header_name) const {
    return std::any_of(tokens_.begin(), tokens_.end(),
                       [header_name](const std::string& t) { return iequals(t, header_name); });
}

bool is_hop_by_hop(std::string_view name) { return is_one_of(name, kHopByHop); }

bool forward_request_header(std::string_view name, const ConnectionTokens& connection) {
    // A name with an underscore is dropped (nginx's underscores_in_headers off): CGI-style
    // servers map `X_Forwarded_For` and `X-Forwarded-For` to the same variable.
    if (name.find('_') != std::string_view::npos) return false;
    if (name.size() >= kForwardedPrefix.size() &&
        iequals(name.substr(0, kForwardedPrefix.size()), kForwardedPrefix)) {
        return false;
    }
    return !is_hop_by_hop(name) && !connection.names(name) &&
           !is_one_of(name, kGatewayOwnedRequest) && !is_one_of(name, kClientAddressRequest);
}

bool forward_response_header(std::string_view name, const ConnectionTokens& connection) {
    return !is_hop_by_hop(name) && !connection.names(name) &&
           !is_one_of(name, kGatewayOwnedResponse);
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace turnout::protocol
