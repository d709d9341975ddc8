#include "gateway/errors.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace turnout::gateway {
ErrorShape error_shape(errc e) noexcept {
    constexpr std::string_view kInvalid = "invalid_request_error";
    constexpr std::string_view kUpstream = "upstream_error";
    switch (e) {
        case errc::invalid_json:
            return {400, kInvalid, "invalid_json"};
        case errc::invalid_request:
            return {400, kInvalid, "invalid_request"};
        case errc::unauthorized:
            return {401, kInvalid, "invalid_api_key"};
        case errc::missing_model:
            return {400, kInvalid, "missing_model"};
        case errc::bad_request:
            return {400, kInvalid, "bad_request"};
        case errc::model_not_found:
            return {404, kInvalid, "model_not_found"};
        case errc::not_found:
            return {404, kInvalid, "not_found"};
        case errc::method_not_allowed:
            return {405, kInvalid, "method_not_allowed"};
        case errc::conflict:
            return {409, kInvalid, "conflict"};
        case errc::request_timeout:
            return {408, kInvalid, "request_timeout"};
        case errc::request_too_large:
            return {413, kInvalid, "request_too_large"};
        case errc::headers_too_large:
            return {431, kInvalid, "headers_too_large"};
        case errc::unsupported:
            return {501, kInvalid, "unsupported"};
        case errc::upstream_unavailable:
            return {502, kUpstream, "upstream_unavailable"};
        case errc::upstream_timeout:
            return {504, kUpstream, "upstream_timeout"};
        case errc::upstream_stream_failed:
            return {502, kUpstream, "upstream_stream_failed"};
        case errc::uri_too_long:
            return {414, kInvalid, "uri_too_long"};
        case errc::version_not_supported:
            return {505, kInvalid, "http_version_not_supported"};
        case errc::overloaded:
            return {503, "server_error", "overloaded"};
        case errc::circuit_open:
            return {503, kUpstream, "circuit_open"};
    }
    return {500, "server_error", "internal_error"};
}

std::string openai_error_body(errc e, std::string_view message) {
    const ErrorShape shape = error_shape(e);
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    writer.StartObject();
    writer.Key("error");
    writer.StartObject();
    writer.Key("message");
    writer.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
    writer.Key("type");
    writer.String(shape.type.data(), static_cast<rapidjson::SizeType>(shape.type.size()));
    writer.Key("code");
    writer.String(shape.code.data(), static_cast<rapidjson::SizeType>(shape.code.size()));
    writer.EndObject();
    writer.EndObject();
    return {out.GetString(), out.GetSize()};
}

}  // namespace turnout::gateway
