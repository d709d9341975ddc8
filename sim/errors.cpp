#include "sim/errors.hpp"

#include "sim/json_writer.hpp"

namespace turnout::sim {
namespace {

constexpr std::string_view kSimulatedFailure =
    R"({"error":{"message":"simulated failure","type":"server_error","code":"simulated"}})";

std::string_view anthropic_fault_message(std::string_view type) {
    if (type == "overloaded_error") {
        return "Overloaded";
    }
    if (type == "rate_limit_error") {
        return "Number of requests has exceeded your rate limit (simulated)";
    }
    return "simulated failure";
}

}  // namespace

void render_openai_error(std::string& out, std::string_view message, std::string_view type,
                         std::string_view code) {
    out.clear();
    out += R"({"error":{"message":)";
    append_json_string(out, message);
    out += R"(,"type":)";
    append_json_string(out, type);
    out += R"(,"code":)";
    append_json_string(out, code);
    out += "}}";
}

void render_anthropic_error(std::string& out, std::string_view type, std::string_view message) {
    out.clear();
    out += R"({"type":"error","error":{"type":)";
    append_json_string(out, type);
    out += R"(,"message":)";
    append_json_string(out, message);
    out += "}}";
}

std::string_view anthropic_error_type(unsigned status) {
    switch (status) {
        case 401:
            return "authentication_error";
        case 402:
            return "billing_error";
        case 403:
            return "permission_error";
        case 404:
            return "not_found_error";
        case 413:
            return "request_too_large";
        case 429:
            return "rate_limit_error";
        case 503:
        case 529:
            return "overloaded_error";
        case 504:
            return "timeout_error";
        default:
            return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

void render_failure(std::string& out, Kind kind, unsigned status, std::string_view message,
                    std::string_view code) {
    if (kind == Kind::anthropic) {
        render_anthropic_error(out, anthropic_error_type(status), message);
    } else {
        render_openai_error(out, message, "invalid_request_error", code);
    }
}

void render_fault(std::string& out, Kind kind, unsigned status) {
    if (kind == Kind::anthropic) {
        const std::string_view type = anthropic_error_type(status);
        render_anthropic_error(out, type, anthropic_fault_message(type));
    } else {
        out.assign(kSimulatedFailure);
    }
}

}  // namespace turnout::sim
