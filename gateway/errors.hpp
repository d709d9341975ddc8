#pragma once
/// Domain failures of the gateway as one error enum, and the single
/// place that maps them to an HTTP status and OpenAI's error shape
/// `{"error": {"message", "type", "code"}}`.

#include <string>
#include <string_view>

namespace turnout::gateway {

enum class errc {
    invalid_json = 1,
    invalid_request,
    unauthorized,
    missing_model,
    bad_request,
    model_not_found,
    not_found,
    method_not_allowed,
    conflict,
    request_timeout,
    request_too_large,
    headers_too_large,
    unsupported,
    upstream_unavailable,
    upstream_timeout,
    upstream_stream_failed,
    uri_too_long,
    version_not_supported,
    overloaded,    ///< the gateway is at its high-water mark of requests in flight
    circuit_open,  ///< every target's circuit breaker is open
};

struct ErrorShape {
    unsigned status;
    std::string_view type;
    std::string_view code;
};

/// The one mapping from a failure to what the client sees.
ErrorShape error_shape(errc e) noexcept;

/// `{"error":{"message":...,"type":...,"code":...}}`, message JSON-escaped.
std::string openai_error_body(errc e, std::string_view message);

}  // namespace turnout::gateway
