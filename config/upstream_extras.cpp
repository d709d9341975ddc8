#include "config/upstream_extras.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <set>

#include "config/values.hpp"
#include "config/yaml_reader.hpp"

namespace turnout::config::detail {
namespace {

// RFC 9110 token characters: a header name outside them would corrupt the request.
bool is_header_name(std::string_view name) {
    constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               kExtra.find(c) != std::string_view::npos;
    });
}

bool has_control_char(std::string_view text) {
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

rapidjson::SizeType json_size(const std::string& text) {
    return static_cast<rapidjson::SizeType>(text.size());
}

// Fields the gateway itself derives from the client's request: overriding them from the config
// would send a different model, drop the conversation or desynchronise the stream relay.
bool is_gateway_field(std::string_view name) {
    return name == "model" || name == "messages" || name == "stream";
}

/// A plain (unquoted) YAML scalar typed the way YAML 1.2's core schema types it: null, bool,
/// integer, finite float, else a string. A quoted scalar is always a string.
void write_json_scalar(const YAML::Node& node, JsonWriter& out) {
    const std::string& text = node.Scalar();
    if (node.Tag() != "?") {
        out.String(text.data(), json_size(text));
        return;
    }
    bool flag = false;
    if (text == "null" || text == "Null" || text == "NULL" || text == "~") {
        out.Null();
    } else if (parse_bool(text, flag)) {
        out.Bool(flag);
    } else {
        const std::string_view digits = std::string_view(text).substr(
            !text.empty() && (text.front() == '-' || text.front() == '+') ? 1 : 0);
        const bool negative = !text.empty() && text.front() == '-';
        std::uint64_t magnitude = 0;
        double number = 0;
        if (parse_uint(digits, magnitude) &&
            magnitude <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            const auto value = static_cast<std::int64_t>(magnitude);
            out.Int64(negative ? -value : value);
        } else if (!digits.empty() && digits.front() != '-' && digits.front() != '+' &&
                   parse_double(digits, number)) {
            out.Double(negative ? -number : number);
        } else {
            out.String(text.data(), json_size(text));
        }
    }
}

bool write_json(Diagnostics& diag, const Field& f, JsonWriter& out, bool top_level);

/// The fields of a YAML map as a JSON object; reports every problem and returns false on any.
bool write_json_object(Diagnostics& diag, const Field& f, JsonWriter& out, bool top_level) {
    bool ok = true;
    std::set<std::string, std::less<>> seen;  // JSON with a repeated name is ambiguous
    out.StartObject();
    for_each_entry(f, [&](const MapEntry& entry) {
        const auto refuse = [&](const std::string& message) {
            diag.error(entry.key_at, f.path, message);
            ok = false;
        };
        const std::string* name = entry.key_name(diag, f.path, "a field name");
        if (!name) {
            ok = false;
        } else if (!seen.insert(*name).second) {
            refuse("duplicate field " + in_quotes(*name));
        } else if (top_level && is_gateway_field(*name)) {
            refuse(in_quotes(*name) + " is set by the gateway from the client's request");
        } else {
            out.Key(name->data(), json_size(*name));
            if (!write_json(diag, entry.value_field(f.path + "." + *name), out, false)) ok = false;
        }
    });
    out.EndObject();
    return ok;
}

/// Writes one YAML value as JSON; reports every problem and returns false on any.
bool write_json(Diagnostics& diag, const Field& f, JsonWriter& out, bool top_level) {
    switch (f.node.Type()) {
        case YAML::NodeType::Null:
            out.Null();
            return true;
        case YAML::NodeType::Scalar:
            write_json_scalar(f.node, out);
            return true;
        case YAML::NodeType::Sequence: {
            bool ok = true;
            out.StartArray();
            for_each_item(diag, f, [&](const Field& item) {
                if (!write_json(diag, item, out, false)) ok = false;
            });
            out.EndArray();
            return ok;
        }
        case YAML::NodeType::Map:
            return write_json_object(diag, f, out, top_level);
        default:
            diag.error(f, expected_got("a value", f.node));
            return false;
    }
}

}  // namespace

void read_headers(Diagnostics& diag, const Field& f, std::map<std::string, std::string>& out,
                  bool lower_case) {
    if (f.node.IsNull() || !expect_map(diag, f, "a map of headers")) return;
    std::set<std::string> seen;  // header names compare case-insensitively
    for_each_entry(f, [&](const MapEntry& entry) {
        const std::string name = entry.key.IsScalar() ? entry.key.Scalar() : "";
        if (!is_header_name(name)) {
            diag.error(entry.key_at, f.path, "invalid header name " + describe(entry.key));
            return;
        }
        if (!seen.insert(to_lower(name)).second) {
            diag.error(entry.key_at, f.path, "duplicate header " + in_quotes(name));
            return;
        }
        const Field value = entry.value_field(f.path + "." + name);
        std::string text;
        if (!read_string(diag, value, text)) return;
        if (has_control_char(text)) {
            diag.error(value, "a header value must not contain CR, LF or NUL");
            return;
        }
        out[lower_case ? to_lower(name) : name] = text;
    });
}

void read_extra_body(Diagnostics& diag, const Field& f, std::string& out) {
    if (f.node.IsNull() || !expect_map(diag, f, "a map of body fields")) return;
    if (f.node.size() == 0) return;
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    if (write_json(diag, f, writer, true)) out.assign(buffer.GetString(), buffer.GetSize());
}

}  // namespace turnout::config::detail
