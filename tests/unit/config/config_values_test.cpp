// The scalar value parsers: durations, sizes and upstream URLs (CONTRACT.md "Values").
#include <gtest/gtest.h>

#include "config/loader.hpp"

namespace turnout::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

config::Duration duration_of(std::string_view text) {
    config::Duration d{-1};
    EXPECT_TRUE(config::parse_duration(text, d)) << text;
    return d;
}

TEST(ParseDuration, EveryUnit) {
    EXPECT_EQ(duration_of("250ms"), milliseconds(250));
    EXPECT_EQ(duration_of("30s"), seconds(30));
    EXPECT_EQ(duration_of("10m"), minutes(10));
    EXPECT_EQ(duration_of("2h"), hours(2));
}

TEST(ParseDuration, ZeroAndLeadingZeros) {
    EXPECT_EQ(duration_of("0s"), config::Duration(0));
    EXPECT_EQ(duration_of("0ms"), config::Duration(0));
    EXPECT_EQ(duration_of("007s"), seconds(7));
}

TEST(ParseDuration, LargeValuesWithoutOverflow) {
    EXPECT_EQ(duration_of("1000000h"), hours(1000000));
    config::Duration d{5};
    EXPECT_FALSE(config::parse_duration("99999999999999999999ms", d));
    EXPECT_FALSE(config::parse_duration("9223372036854776h", d));
    EXPECT_EQ(d, config::Duration(5)) << "untouched on failure";
}

TEST(ParseDuration, RejectsEverythingElse) {
    for (const char* bad : {"", "s", "ms", "30", "0", "30 s", " 30s", "30s ", "1.5s", "-1s", "+1s",
                            "30S", "30sec", "1d", "1us", "30ms5", "1h30m", "abc", "0x10s"}) {
        config::Duration d{};
        EXPECT_FALSE(config::parse_duration(bad, d)) << "'" << bad << "'";
    }
}

std::uint64_t size_of(std::string_view text) {
    std::uint64_t n = 12345;
    EXPECT_TRUE(config::parse_size(text, n)) << text;
    return n;
}

TEST(ParseSize, UnitsAndPlainBytes) {
    EXPECT_EQ(size_of("512B"), 512u);
    EXPECT_EQ(size_of("64KiB"), 64u * 1024);
    EXPECT_EQ(size_of("4MiB"), 4u * 1024 * 1024);
    EXPECT_EQ(size_of("1GiB"), 1ull << 30);
    EXPECT_EQ(size_of("1048576"), 1048576u);
    EXPECT_EQ(size_of("0"), 0u);
    EXPECT_EQ(size_of("0B"), 0u);
}

TEST(ParseSize, LargeValues) {
    EXPECT_EQ(size_of("18446744073709551615"), 18446744073709551615ull);
    EXPECT_EQ(size_of("17179869183GiB"), 17179869183ull << 30);
    std::uint64_t n = 7;
    EXPECT_FALSE(config::parse_size("17179869184GiB", n));
    EXPECT_FALSE(config::parse_size("18446744073709551616", n));
    EXPECT_EQ(n, 7u);
}

TEST(ParseSize, RejectsEverythingElse) {
    for (const char* bad : {"", "B", "MiB", "4MB", "4mib", "4 MiB", "4KB", "4k", "4M", "1.5MiB",
                            "-1", "+1", "4MiBs", "4TiB", "abc", " 4"}) {
        std::uint64_t n = 0;
        EXPECT_FALSE(config::parse_size(bad, n)) << "'" << bad << "'";
    }
}

config::UpstreamAddress url_ok(std::string_view url) {
    config::UpstreamAddress a;
    EXPECT_EQ(config::parse_upstream_url(url, a), "") << url;
    return a;
}

TEST(ParseUpstreamUrl, HttpsDefaultsToPort443) {
    const auto a = url_ok("https://api.anthropic.com");
    EXPECT_TRUE(a.tls);
    EXPECT_EQ(a.host, "api.anthropic.com");
    EXPECT_EQ(a.port, 443);
    EXPECT_EQ(a.base_path, "");
}

TEST(ParseUpstreamUrl, HttpDefaultsToPort80) {
    const auto a = url_ok("http://localhost");
    EXPECT_FALSE(a.tls);
    EXPECT_EQ(a.port, 80);
}

TEST(ParseUpstreamUrl, PathKeptWithoutTrailingSlash) {
    EXPECT_EQ(url_ok("https://api.cerebras.ai/v1").base_path, "/v1");
    EXPECT_EQ(url_ok("https://api.cerebras.ai/v1/").base_path, "/v1");
    EXPECT_EQ(url_ok("https://h/a/b//").base_path, "/a/b");
    EXPECT_EQ(url_ok("https://h/").base_path, "");
}

TEST(ParseUpstreamUrl, ExplicitPortAndIpv6) {
    const auto a = url_ok("http://127.0.0.1:9000/v1");
    EXPECT_EQ(a.host, "127.0.0.1");
    EXPECT_EQ(a.port, 9000);
    EXPECT_EQ(a.base_path, "/v1");
    const auto b = url_ok("https://[::1]:8443");
    EXPECT_TRUE(b.tls);
    EXPECT_EQ(b.host, "::1");
    EXPECT_EQ(b.port, 8443);
    EXPECT_EQ(url_ok("http://[fe80::1]/x").port, 80);
    EXPECT_EQ(url_ok("HTTPS://Host.Example").port, 443);
}

TEST(ParseUpstreamUrl, Errors) {
    struct Case {
        const char* url;
        const char* message;
    };
    const Case cases[] = {
        {"ftp://h", "expected an http:// or https:// URL"},
        {"api.openai.com/v1", "expected an http:// or https:// URL"},
        {"", "expected an http:// or https:// URL"},
        {"https://", "the URL has no host"},
        {"https:///v1", "the URL has no host"},
        {"https://:443", "the URL has no host"},
        {"http://h:0", "the URL port must be between 1 and 65535"},
        {"http://h:65536", "the URL port must be between 1 and 65535"},
        {"http://h:", "the URL port must be between 1 and 65535"},
        {"http://h:8a", "the URL port must be between 1 and 65535"},
        {"http://h/v1?x=1", "the URL must not have a query or fragment"},
        {"http://h/v1#top", "the URL must not have a query or fragment"},
        {"http://h?x", "the URL must not have a query or fragment"},
        {"http://h /v1", "a URL must not contain spaces"},
        {"http://::1:80", "an IPv6 host needs brackets, e.g. http://[::1]:8080"},
        {"http://[::1", "unterminated IPv6 address in the URL"},
        {"http://[::1]x", "unexpected text after the IPv6 address"},
        {"http://[]:80", "the URL has no host"},
    };
    for (const auto& c : cases) {
        config::UpstreamAddress a;
        a.host = "untouched";
        EXPECT_EQ(config::parse_upstream_url(c.url, a), c.message) << c.url;
        EXPECT_EQ(a.host, "untouched") << c.url;
    }
}

TEST(ParseUpstreamUrl, UserInfoRejectedWithoutEchoingIt) {
    config::UpstreamAddress a;
    const auto message = config::parse_upstream_url("https://user:sk-secret@api.openai.com/v1", a);
    EXPECT_NE(message, "");
    EXPECT_EQ(message.find("sk-secret"), std::string::npos) << message;
}

}  // namespace
}  // namespace turnout::config
