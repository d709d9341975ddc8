#include "config/values.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "config/loader.hpp"

namespace turnout::config {
namespace detail {
namespace {

/// A host and its port, as written: the host without its IPv6 brackets.
struct HostPort {
    std::string_view host;
    std::optional<std::string_view> port;  ///< absent when nothing follows the host
};

enum class HostPortError { none, unterminated, text_after_brackets, unbracketed_ipv6 };

/// Splits "host", "host:port" or "[v6]:port". `close` ends a bracketed host: "]" in a URL,
/// "]:" in a listen address (whose port is never optional).
HostPortError split_host_port(std::string_view text, std::string_view close, HostPort& out) {
    if (!text.empty() && text.front() == '[') {
        const auto end = text.find(close);
        if (end == std::string_view::npos) return HostPortError::unterminated;
        out.host = text.substr(1, end - 1);
        const auto after = text.substr(end + 1);
        if (!after.empty() && after.front() != ':') return HostPortError::text_after_brackets;
        if (!after.empty()) out.port = after.substr(1);
    } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
        out.host = text.substr(0, colon);
        out.port = text.substr(colon + 1);
        if (out.host.find(':') != std::string_view::npos) return HostPortError::unbracketed_ipv6;
    } else {
        out.host = text;
    }
    return HostPortError::none;
}

/// "host", "host:port" or "[v6]:port" of a URL into `address` (whose `tls` is already set).
std::string parse_authority(std::string_view authority, UpstreamAddress& address) {
    HostPort split;
    switch (split_host_port(authority, "]", split)) {
        case HostPortError::unterminated:
            return "unterminated IPv6 address in the URL";
        case HostPortError::text_after_brackets:
            return "unexpected text after the IPv6 address";
        case HostPortError::unbracketed_ipv6:
            return "an IPv6 host needs brackets, e.g. http://[::1]:8080";
        case HostPortError::none:
            break;
    }
    if (split.host.empty()) return "the URL has no host";
    address.port = address.tls ? 443 : 80;
    if (split.port) {
        std::uint64_t number = 0;
        if (split.port->size() > 5 || !parse_uint(*split.port, number) || number == 0 ||
            number > 65535) {
            return "the URL port must be between 1 and 65535";
        }
        address.port = static_cast<std::uint16_t>(number);
    }
    address.host = std::string(split.host);
    return "";
}

struct Unit {
    std::string_view suffix;
    std::uint64_t factor;
};

/// Digits and then one of `units`: the number times the unit's factor, if at most `max`.
bool parse_with_unit(std::string_view text, std::initializer_list<Unit> units, std::uint64_t max,
                     std::uint64_t& out) {
    const auto digits = std::min(text.find_first_not_of("0123456789"), text.size());
    if (digits == 0) return false;
    const auto suffix = text.substr(digits);
    const auto* unit =
        std::find_if(units.begin(), units.end(), [&](const Unit& u) { return u.suffix == suffix; });
    if (unit == units.end()) return false;
    std::uint64_t value = 0;
    if (!parse_uint(text.substr(0, digits), value) || value > max / unit->factor) return false;
    out = value * unit->factor;
    return true;
}

}  // namespace

bool parse_uint(std::string_view text, std::uint64_t& out) {
    if (text.empty()) return false;
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && ptr == end;
}

bool parse_double(std::string_view text, double& out) {
    if (text.empty()) return false;
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && ptr == end && std::isfinite(out);
}

bool parse_bool(std::string_view text, bool& out) {
    if (text == "true" || text == "True" || text == "TRUE") {
        out = true;
    } else if (text == "false" || text == "False" || text == "FALSE") {
        out = false;
    } else {
        return false;
    }
    return true;
}

std::string to_lower(std::string_view text) {
    std::string lower(text);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower;
}

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string format_number(double value) {
    std::ostringstream out;
    out << value;
    return out.str();
}

std::string listen_error(std::string_view text) {
    const std::string expected =
        "expected HOST:PORT (e.g. 0.0.0.0:8080 or [::1]:8080), got " + in_quotes(text);
    HostPort split;
    switch (split_host_port(text, "]:", split)) {
        case HostPortError::none:
            break;
        case HostPortError::unbracketed_ipv6:
            return "an IPv6 address needs brackets, e.g. [::1]:8080; got " + in_quotes(text);
        default:
            return expected;
    }
    const auto& [host, port] = split;
    std::uint64_t number = 0;
    if (!port || host.empty() || host.find_first_of(" \t") != std::string_view::npos) {
        return expected;
    }
    if (port->size() > 5 || !parse_uint(*port, number)) return expected;
    if (number > 65535) return "port must be between 0 and 65535, got " + in_quotes(*port);
    return "";
}

}  // namespace detail

bool parse_duration(std::string_view text, Duration& out) {
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max());
    std::uint64_t ms = 0;
    if (!detail::parse_with_unit(
            text, {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}}, kMax, ms)) {
        return false;
    }
    out = Duration(static_cast<Duration::rep>(ms));
    return true;
}

bool parse_size(std::string_view text, std::uint64_t& out) {
    return detail::parse_with_unit(
        text, {{"", 1}, {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}},
        std::numeric_limits<std::uint64_t>::max(), out);
}

std::string parse_upstream_url(std::string_view url, UpstreamAddress& out) {
    UpstreamAddress address;
    std::string_view rest;
    const std::string lower = detail::to_lower(url.substr(0, 8));
    if (lower.starts_with("https://")) {
        address.tls = true;
        rest = url.substr(8);
    } else if (lower.starts_with("http://")) {
        rest = url.substr(7);
    } else {
        return "expected an http:// or https:// URL";
    }
    if (rest.find_first_of(" \t\r\n") != std::string_view::npos) {
        return "a URL must not contain spaces";
    }
    const auto path_start = rest.find_first_of("/?#");
    const auto authority = rest.substr(0, path_start);
    const auto path =
        path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
    if (authority.find('@') != std::string_view::npos) {
        return "the URL must not contain user info; put the key in api_key_env";
    }
    if (path.find_first_of("?#") != std::string_view::npos) {
        return "the URL must not have a query or fragment";
    }
    if (auto message = detail::parse_authority(authority, address); !message.empty()) {
        return message;
    }
    std::string_view base_path = path;
    while (!base_path.empty() && base_path.back() == '/') base_path.remove_suffix(1);
    address.base_path = std::string(base_path);
    out = std::move(address);
    return "";
}

}  // namespace turnout::config
