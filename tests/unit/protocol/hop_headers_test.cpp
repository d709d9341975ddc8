#include "protocol/hop_headers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace turnout::protocol {
namespace {

const std::vector<std::string_view> kHopByHop = {
    "Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
};

// Ordinary end-to-end headers both directions must keep.
const std::vector<std::string_view> kEndToEnd = {
    "Content-Type",  "Accept",   "User-Agent",        "OpenAI-Organization",
    "Cache-Control", "X-Custom", "anthropic-version",
};

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

TEST(Iequals, IgnoresAsciiCaseOnly) {
    EXPECT_TRUE(iequals("", ""));
    EXPECT_TRUE(iequals("Content-Length", "content-length"));
    EXPECT_TRUE(iequals("X-API-KEY", "x-api-key"));
    EXPECT_FALSE(iequals("content-length", "content-lengt"));
    EXPECT_FALSE(iequals("te", "tE "));
    EXPECT_FALSE(iequals("a", ""));
    // Pairs 0x20 apart that are not letters: a blanket `| 0x20` would equate them.
    EXPECT_FALSE(iequals("@", "`"));
    EXPECT_FALSE(iequals("[", "{"));
    EXPECT_FALSE(iequals("-", "\r"));
    // Latin-1 A-umlaut vs a-umlaut: not ASCII, so not folded whatever the locale.
    EXPECT_FALSE(iequals("\xc4", "\xe4"));
    EXPECT_TRUE(iequals("\xc4", "\xc4"));
}

TEST(ConnectionTokens, SplitsTrimsAndLowerCases) {
    ConnectionTokens tokens;
    tokens.add_connection_value("close, X-Foo");
    EXPECT_TRUE(tokens.names("close"));
    EXPECT_TRUE(tokens.names("x-foo"));
    EXPECT_TRUE(tokens.names("X-FOO"));
    EXPECT_TRUE(tokens.names("x-Foo"));
    EXPECT_FALSE(tokens.names("x-fo"));
    EXPECT_FALSE(tokens.names("foo"));
    EXPECT_FALSE(tokens.names(" x-foo"));
    EXPECT_FALSE(tokens.names("close, x-foo"));
}

TEST(ConnectionTokens, IgnoresEmptyElementsAndOws) {
    ConnectionTokens tokens;
    tokens.add_connection_value(" ,\t, X-Bar\t ,,keep-alive ,");
    EXPECT_TRUE(tokens.names("x-bar"));
    EXPECT_TRUE(tokens.names("Keep-Alive"));
    EXPECT_FALSE(tokens.names(""));
    EXPECT_FALSE(tokens.names(" "));
}

TEST(ConnectionTokens, AccumulatesAcrossFields) {
    ConnectionTokens tokens;
    EXPECT_FALSE(tokens.names("x-one"));
    tokens.add_connection_value("X-One");
    tokens.add_connection_value("");
    tokens.add_connection_value("x-two");
    EXPECT_TRUE(tokens.names("x-one"));
    EXPECT_TRUE(tokens.names("X-TWO"));
    EXPECT_FALSE(tokens.names("x-three"));
}

TEST(HopByHop, FixedListAnyCase) {
    for (auto name : kHopByHop) {
        EXPECT_TRUE(is_hop_by_hop(name)) << name;
        EXPECT_TRUE(is_hop_by_hop(lower(name))) << name;
        EXPECT_TRUE(is_hop_by_hop(upper(name))) << name;
    }
    for (auto name : kEndToEnd) EXPECT_FALSE(is_hop_by_hop(name)) << name;
    // Near misses are not hop-by-hop.
    for (std::string_view name : {"Connections", "X-Upgrade", "TE2", "T", "Trailers", "Keep-Alive ",
                                  "transfer_encoding", ""}) {
        EXPECT_FALSE(is_hop_by_hop(name)) << name;
    }
}

TEST(ForwardRequestHeader, DropsHopByHopInAnyCase) {
    const ConnectionTokens none;
    for (auto name : kHopByHop) {
        EXPECT_FALSE(forward_request_header(name, none)) << name;
        EXPECT_FALSE(forward_request_header(upper(name), none)) << name;
        EXPECT_FALSE(forward_response_header(name, none)) << name;
        EXPECT_FALSE(forward_response_header(lower(name), none)) << name;
    }
}

TEST(ForwardRequestHeader, DropsGatewayOwnedAndCredentials) {
    const ConnectionTokens none;
    for (std::string_view name :
         {"Host", "Content-Length", "Authorization", "x-api-key", "Accept-Encoding", "Expect"}) {
        EXPECT_FALSE(forward_request_header(name, none)) << name;
        EXPECT_FALSE(forward_request_header(upper(name), none)) << name;
        EXPECT_FALSE(forward_request_header(lower(name), none)) << name;
    }
}

TEST(ForwardRequestHeader, DropsProxyCredentialsAndClientAssertedAddresses) {
    const ConnectionTokens none;
    for (std::string_view name : {"Proxy-Authorization", "X-Forwarded-For", "Forwarded",
                                  "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto"}) {
        EXPECT_FALSE(forward_request_header(name, none)) << name;
        EXPECT_FALSE(forward_request_header(upper(name), none)) << name;
        EXPECT_FALSE(forward_request_header(lower(name), none)) << name;
    }
    // Names that merely resemble them are ordinary headers.
    EXPECT_TRUE(forward_request_header("X-Forwarded", none));
    EXPECT_TRUE(forward_request_header("X-Real-IPv6-Note", none));
}

TEST(ForwardRequestHeader, DropsNamesWithUnderscores) {
    const ConnectionTokens none;
    for (std::string_view name : {"X_Forwarded_For", "x_real_ip", "Content_Length", "_", "a_b"}) {
        EXPECT_FALSE(forward_request_header(name, none)) << name;
    }
    EXPECT_TRUE(forward_request_header("x-team", none));
}

TEST(ForwardRequestHeader, KeepsEndToEnd) {
    const ConnectionTokens none;
    for (auto name : kEndToEnd) EXPECT_TRUE(forward_request_header(name, none)) << name;
    // The client's request id is end-to-end on the way in; only the upstream's is replaced.
    EXPECT_TRUE(forward_request_header("X-Request-Id", none));
}

TEST(ForwardRequestHeader, DropsFieldsNamedInConnection) {
    ConnectionTokens connection;
    connection.add_connection_value("close, X-Secret");
    EXPECT_FALSE(forward_request_header("X-Secret", connection));
    EXPECT_FALSE(forward_request_header("x-secret", connection));
    EXPECT_FALSE(forward_request_header("X-SECRET", connection));
    EXPECT_TRUE(forward_request_header("X-Secret-2", connection));
    EXPECT_TRUE(forward_request_header("Content-Type", connection));

    // Connection can even name an end-to-end header; it then stops at this hop.
    ConnectionTokens names_content_type;
    names_content_type.add_connection_value("content-type");
    EXPECT_FALSE(forward_request_header("Content-Type", names_content_type));
    EXPECT_TRUE(forward_request_header("Content-Type", ConnectionTokens{}));
}

TEST(ForwardResponseHeader, DropsFieldsNamedInConnection) {
    ConnectionTokens connection;
    connection.add_connection_value("X-Upstream-Debug , keep-alive");
    EXPECT_FALSE(forward_response_header("x-upstream-debug", connection));
    EXPECT_FALSE(forward_response_header("X-Upstream-Debug", connection));
    EXPECT_TRUE(forward_response_header("X-Upstream-Debug", ConnectionTokens{}));
}

TEST(ForwardResponseHeader, DropsContentLengthAndUpstreamRequestId) {
    const ConnectionTokens none;
    for (std::string_view name :
         {"Content-Length", "content-length", "X-Request-Id", "x-request-id", "X-REQUEST-ID"}) {
        EXPECT_FALSE(forward_response_header(name, none)) << name;
    }
}

TEST(ForwardResponseHeader, KeepsEndToEndAndProviderHeaders) {
    const ConnectionTokens none;
    for (auto name : kEndToEnd) EXPECT_TRUE(forward_response_header(name, none)) << name;
    for (std::string_view name : {"openai-processing-ms", "x-ratelimit-remaining-requests",
                                  "Retry-After", "Content-Encoding", "Date"}) {
        EXPECT_TRUE(forward_response_header(name, none)) << name;
    }
}

}  // namespace
}  // namespace turnout::protocol
