#pragma once
/// One upstream provider (an entry of `providers:`): where it is, how it is called, what it
/// costs, and when its circuit opens.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "config/duration.hpp"

namespace turnout::config {

enum class ProviderKind { openai, anthropic };

struct PriceConfig {
    double input_per_mtok = 0.0;
    double output_per_mtok = 0.0;
};

/// USD for `input` and `output` tokens at `price` (dollars per million tokens).
inline double cost_usd(const PriceConfig& price, std::uint64_t input, std::uint64_t output) {
    return (static_cast<double>(input) * price.input_per_mtok +
            static_cast<double>(output) * price.output_per_mtok) /
           1e6;
}

/// base_url split once at load time so the data plane never parses URLs.
struct UpstreamAddress {
    bool tls = false;
    std::string host;        ///< without brackets for IPv6
    std::uint16_t port = 0;  ///< 443 / 80 when the URL gives none
    std::string base_path;   ///< no trailing slash; "" for the root
};

/// Consecutive live failures (connection, TLS, timeout, reset, protocol, 5xx) open the
/// provider's circuit for `cooldown`; then one request probes it (half-open). Shadow and judge
/// calls do not feed it. `failures: 0` turns it off.
struct CircuitBreakerConfig {
    std::uint32_t failures = 5;
    Duration cooldown = std::chrono::seconds(30);
};

struct ProviderConfig {
    std::string name;
    ProviderKind kind = ProviderKind::openai;
    std::string base_url;
    UpstreamAddress address;
    std::string api_key_env;                              ///< empty = no key (local servers)
    Duration timeout = std::chrono::seconds(120);         ///< hard deadline of one upstream request
    Duration connect_timeout = std::chrono::seconds(10);  ///< extension: TCP + TLS handshake
    /// Extension: request sent -> response head.
    Duration first_byte_timeout = std::chrono::seconds(60);
    /// Extension: the gap between two reads of a streamed response.
    Duration stream_idle_timeout = std::chrono::seconds(60);
    std::uint32_t max_connections = 64;
    std::map<std::string, std::string> headers;  ///< extra upstream headers, names as written
    /// Extra fields for every upstream request body (e.g. Anthropic's fast mode `speed: fast`),
    /// as the text of one JSON object; "" when the YAML `body` is absent or has no fields.
    std::string extra_body_json;
    /// `max_tokens` sent to an `anthropic` provider when the client's request has none (the
    /// Messages API requires it; OpenAI's chat API does not).
    std::uint32_t max_tokens_default = 4096;
    PriceConfig price;
    std::string ca_file;     ///< extra trust anchor (PEM) for private CAs; system store always used
    bool tls_verify = true;  ///< extension; false only for local testing, logged as a warning
    CircuitBreakerConfig circuit_breaker;
};

}  // namespace turnout::config
