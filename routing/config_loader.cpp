#include "routing/config_loader.hpp"

#include "routing/bounded_file.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

namespace turnout::routing {
namespace {

// ---------------------------------------------------------------------------------------------
// Positions and the error collector

struct Position {
    int line = 1;
    int column = 1;
};

// yaml-cpp marks are 0-based, and a node built without source text has a null mark.
Position position_of(const YAML::Mark& mark) {
    if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
    return {mark.line + 1, mark.column + 1};
}

/// Collects every problem with its position; they come out sorted in file order, because
/// sections are read in dependency order (providers before routes), not file order.
class Diagnostics {
  public:
    explicit Diagnostics(std::string file) : file_(std::move(file)) {}

    void error(Position at, std::string_view path, std::string_view message) {
        errors_.push_back(make(at, path, message));
    }
    void warning(Position at, std::string_view path, std::string_view message) {
        warnings_.push_back(make(at, path, message));
    }

    LoadResult finish(std::shared_ptr<Config> config) {
        LoadResult result;
        for (auto& entry : sorted(std::move(errors_))) {
            result.errors.push_back(ConfigError{std::move(entry.text)});
        }
        for (auto& entry : sorted(std::move(warnings_))) {
            result.warnings.push_back(std::move(entry.text));
        }
        if (result.errors.empty()) result.config = std::move(config);
        return result;
    }

  private:
    struct Entry {
        Position at;
        std::string text;
    };

    Entry make(Position at, std::string_view path, std::string_view message) const {
        std::string text =
            file_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": ";
        if (!path.empty()) text.append(path).append(": ");
        text.append(message);
        return {at, std::move(text)};
    }

    static std::vector<Entry> sorted(std::vector<Entry> entries) {
        std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
            return std::pair(a.at.line, a.at.column) < std::pair(b.at.line, b.at.column);
        });
        return entries;
    }

    std::string file_;
    std::vector<Entry> errors_;
    std::vector<Entry> warnings_;
};

// ---------------------------------------------------------------------------------------------
// Small helpers

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

/// "a map", "a list", "null" or the scalar itself, for "expected X, got Y" messages.
std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Scalar:
            return in_quotes(node.Scalar());
        default:
            return "nothing";
    }
}

std::string format_number(double value) {
    std::ostringstream out;
    out << value;
    return out.str();
}

std::string join_choices(const std::vector<std::string_view>& names) {
    std::string text;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) text += (i + 1 == names.size()) ? " or " : ", ";
        text += names[i];
    }
    return text;
}

std::string to_lower(std::string_view text) {
    std::string lower(text);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower;
}

bool is_env_name(std::string_view name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
}

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

/// "HOST:PORT" with port 0..65535 (0 = ephemeral); IPv6 hosts in brackets. "" when fine.
std::string listen_error(std::string_view text) {
    const std::string expected =
        "expected HOST:PORT (e.g. 0.0.0.0:8080 or [::1]:8080), got " + in_quotes(text);
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find("]:");
        if (close == std::string_view::npos) return expected;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return expected;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return "an IPv6 address needs brackets, e.g. [::1]:8080; got " + in_quotes(text);
        }
    }
    std::uint64_t number = 0;
    if (host.empty() || host.find_first_of(" \t") != std::string_view::npos) return expected;
    if (port.size() > 5 || !parse_uint(port, number)) return expected;
    if (number > 65535) return "port must be between 0 and 65535, got " + in_quotes(port);
    return "";
}

// ---------------------------------------------------------------------------------------------
// Typed readers of one value

/// One value with what is needed to report a problem about it.
struct Field {
    YAML::Node node;
    Position at;       ///< of the value, or of its key when the value is null
    std::string path;  ///< e.g. routes[0].primary.provider

    Field(YAML::Node n, Position p, std::string text)
        : node(std::move(n)), at(p), path(std::move(text)) {}
    Field(const Field&) = default;
    // YAML::Node's assignment writes through to the node it refers to, so assigning a Field
    // would rewrite the document being read.
    Field& operator=(const Field&) = delete;
};

struct Bounds {
    double min = -std::numeric_limits<double>::infinity();
    double max = std::numeric_limits<double>::infinity();
    bool open = false;  ///< exclusive at both ends

    bool contains(double v) const { return open ? (v > min && v < max) : (v >= min && v <= max); }

    std::string describe() const {
        if (open)
            return "greater than " + format_number(min) + " and less than " + format_number(max);
        if (std::isinf(max)) return "at least " + format_number(min);
        return "between " + format_number(min) + " and " + format_number(max);
    }
};

constexpr Bounds kUnit{0.0, 1.0};
constexpr Bounds kUnitOpen{0.0, 1.0, true};
constexpr Bounds kNonNegative{0.0};

bool read_scalar(Diagnostics& diag, const Field& f, std::string_view what, std::string& out) {
    if (!f.node.IsScalar()) {
        diag.error(f.at, f.path, "expected " + std::string(what) + ", got " + describe(f.node));
        return false;
    }
    out = f.node.Scalar();
    return true;
}

bool read_string(Diagnostics& diag, const Field& f, std::string& out) {
    return read_scalar(diag, f, "a string", out);
}

bool read_bool(Diagnostics& diag, const Field& f, bool& out) {
    std::string text;
    if (!read_scalar(diag, f, "true or false", text)) return false;
    if (text == "true" || text == "True" || text == "TRUE") {
        out = true;
    } else if (text == "false" || text == "False" || text == "FALSE") {
        out = false;
    } else {
        diag.error(f.at, f.path, "expected true or false, got " + in_quotes(text));
        return false;
    }
    return true;
}

constexpr std::uint32_t kMaxCount = std::numeric_limits<std::uint32_t>::max();

bool read_count(Diagnostics& diag, const Field& f, std::uint32_t& out, std::uint32_t min = 0,
                std::uint32_t max = kMaxCount) {
    std::string text;
    if (!read_scalar(diag, f, "a non-negative integer", text)) return false;
    std::uint64_t value = 0;
    if (!parse_uint(text, value)) {
        diag.error(f.at, f.path, "expected a non-negative integer, got " + in_quotes(text));
        return false;
    }
    if (value < min || value > max) {
        std::string range;
        if (max != kMaxCount) {
            range = "between " + std::to_string(min) + " and " + std::to_string(max);
        } else if (value < min) {
            range = "at least " + std::to_string(min);
        } else {
            range = "at most " + std::to_string(max);
        }
        diag.error(f.at, f.path, "must be " + range + ", got " + text);
        return false;
    }
    out = static_cast<std::uint32_t>(value);
    return true;
}

bool read_number(Diagnostics& diag, const Field& f, double& out, Bounds bounds) {
    std::string text;
    if (!read_scalar(diag, f, "a number", text)) return false;
    double value = 0;
    if (!parse_double(text, value)) {
        diag.error(f.at, f.path, "expected a number, got " + in_quotes(text));
        return false;
    }
    if (!bounds.contains(value)) {
        diag.error(f.at, f.path, "must be " + bounds.describe() + ", got " + text);
        return false;
    }
    out = value;
    return true;
}

bool read_duration(Diagnostics& diag, const Field& f, Duration& out, bool positive) {
    std::string text;
    if (!read_scalar(diag, f, "a duration", text)) return false;
    Duration value{};
    if (!parse_duration(text, value)) {
        diag.error(f.at, f.path,
                   "invalid duration " + in_quotes(text) +
                       ": expected an integer with ms, s, m or h (e.g. 250ms, 30s, 10m)");
        return false;
    }
    if (positive && value.count() == 0) {
        diag.error(f.at, f.path, "must be greater than 0s");
        return false;
    }
    out = value;
    return true;
}

bool read_size(Diagnostics& diag, const Field& f, std::uint64_t& out) {
    std::string text;
    if (!read_scalar(diag, f, "a size", text)) return false;
    std::uint64_t value = 0;
    if (!parse_size(text, value)) {
        diag.error(f.at, f.path,
                   "invalid size " + in_quotes(text) +
                       ": expected an integer with B, KiB, MiB or GiB, or a number of bytes");
        return false;
    }
    if (value == 0) {
        diag.error(f.at, f.path, "must be greater than 0");
        return false;
    }
    out = value;
    return true;
}

template <typename T>
using Choices = std::initializer_list<std::pair<std::string_view, T>>;

template <typename T>
bool read_choice(Diagnostics& diag, const Field& f, T& out, Choices<T> choices) {
    std::string text;
    if (!read_scalar(diag, f, "a string", text)) return false;
    std::vector<std::string_view> names;
    for (const auto& [name, value] : choices) {
        if (name == text) {
            out = value;
            return true;
        }
        names.push_back(name);
    }
    diag.error(f.at, f.path,
               "unknown value " + in_quotes(text) + " (expected " + join_choices(names) + ")");
    return false;
}

// ---------------------------------------------------------------------------------------------
// A map with a fixed set of keys

/// A YAML map checked against the keys it may hold. Unknown and repeated keys are reported
/// here, once, so section readers only ask for keys they know. A null value (`key:` with
/// nothing after it) counts as an empty map.
class MapView {
  public:
    MapView(Diagnostics& diag, Field self, std::initializer_list<std::string_view> known)
        : diag_(diag), self_(std::move(self)) {
        if (self_.node.IsNull()) {
            valid_ = true;
        } else if (!self_.node.IsMap()) {
            diag_.error(self_.at, self_.path, "expected a map, got " + describe(self_.node));
        } else {
            valid_ = true;
            collect(known);
        }
    }

    bool valid() const { return valid_; }
    const Position& at() const { return self_.at; }
    const std::string& path() const { return self_.path; }

    const Field* get(std::string_view key) const {
        for (const auto& [name, field] : fields_) {
            if (name == key) return &field;
        }
        return nullptr;
    }

    /// The value's position and path, or the map's when the key is absent.
    Field where(std::string_view key) const {
        if (const auto* f = get(key)) return *f;
        return self_;
    }

    /// Reports a missing key at the map; true when it is present.
    bool require(std::string_view key) const {
        if (get(key)) return true;
        diag_.error(self_.at, self_.path, "missing required key " + in_quotes(key));
        return false;
    }

    // Each reader leaves `out` alone when the key is absent. It returns false only when the
    // key is present and wrong, so cross-field checks can skip values already reported.
    bool string(std::string_view key, std::string& out) const {
        const auto* f = get(key);
        return !f || read_string(diag_, *f, out);
    }
    bool boolean(std::string_view key, bool& out) const {
        const auto* f = get(key);
        return !f || read_bool(diag_, *f, out);
    }
    bool count(std::string_view key, std::uint32_t& out, std::uint32_t min = 0) const {
        const auto* f = get(key);
        return !f || read_count(diag_, *f, out, min);
    }
    bool number(std::string_view key, double& out, Bounds bounds) const {
        const auto* f = get(key);
        return !f || read_number(diag_, *f, out, bounds);
    }
    bool duration(std::string_view key, Duration& out, bool positive = false) const {
        const auto* f = get(key);
        return !f || read_duration(diag_, *f, out, positive);
    }
    bool size(std::string_view key, std::uint64_t& out) const {
        const auto* f = get(key);
        return !f || read_size(diag_, *f, out);
    }
    template <typename T>
    bool choice(std::string_view key, T& out, Choices<T> choices) const {
        const auto* f = get(key);
        return !f || read_choice(diag_, *f, out, choices);
    }

  private:
    void collect(std::initializer_list<std::string_view> known) {
        for (const auto& entry : self_.node) {
            const YAML::Node& key = entry.first;
            const Position key_at = position_of(key.Mark());
            if (!key.IsScalar()) {
                diag_.error(key_at, self_.path, "expected a key name, got " + describe(key));
                continue;
            }
            const std::string& name = key.Scalar();
            if (std::find(known.begin(), known.end(), name) == known.end()) {
                diag_.error(key_at, self_.path, "unknown key " + in_quotes(name));
            } else if (get(name)) {
                diag_.error(key_at, self_.path, "duplicate key " + in_quotes(name));
            } else {
                const YAML::Node& value = entry.second;
                const Position value_at = value.IsNull() ? key_at : position_of(value.Mark());
                fields_.emplace_back(name, Field{value, value_at, child_path(name)});
            }
        }
    }

    std::string child_path(std::string_view key) const {
        return self_.path.empty() ? std::string(key) : self_.path + "." + std::string(key);
    }

    Diagnostics& diag_;
    Field self_;
    bool valid_ = false;
    std::vector<std::pair<std::string, Field>> fields_;
};

/// Calls `each(Field)` for every item of a list; a null value counts as an empty list.
template <typename Each>
bool for_each_item(Diagnostics& diag, const Field& list, Each&& each) {
    if (list.node.IsNull()) return true;
    if (!list.node.IsSequence()) {
        diag.error(list.at, list.path, "expected a list, got " + describe(list.node));
        return false;
    }
    std::size_t index = 0;
    for (const auto& item : list.node) {
        const std::string path = list.path + "[" + std::to_string(index++) + "]";
        each(Field{item, item.IsNull() ? list.at : position_of(item.Mark()), path});
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Extra body fields: YAML to JSON

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

rapidjson::SizeType json_size(const std::string& text) {
    return static_cast<rapidjson::SizeType>(text.size());
}

// Fields the gateway itself derives from the client's request: overriding them from the config
// would send a different model, drop the conversation or desynchronise the stream relay.
constexpr std::string_view kGatewayBodyFields[] = {"model", "messages", "stream"};

/// A plain (unquoted) YAML scalar typed the way YAML 1.2's core schema types it: null, bool,
/// integer, finite float, else a string. A quoted scalar is always a string.
void write_json_scalar(const YAML::Node& node, JsonWriter& out) {
    const std::string& text = node.Scalar();
    if (node.Tag() != "?") {
        out.String(text.data(), json_size(text));
        return;
    }
    if (text == "null" || text == "Null" || text == "NULL" || text == "~") {
        out.Null();
    } else if (text == "true" || text == "True" || text == "TRUE") {
        out.Bool(true);
    } else if (text == "false" || text == "False" || text == "FALSE") {
        out.Bool(false);
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
            break;
        default:
            diag.error(f.at, f.path, "expected a value, got " + describe(f.node));
            return false;
    }
    bool ok = true;
    std::set<std::string, std::less<>> seen;  // JSON with a repeated name is ambiguous
    out.StartObject();
    for (const auto& entry : f.node) {
        const Position key_at = position_of(entry.first.Mark());
        if (!entry.first.IsScalar()) {
            diag.error(key_at, f.path, "expected a field name, got " + describe(entry.first));
            ok = false;
            continue;
        }
        const std::string& name = entry.first.Scalar();
        if (!seen.insert(name).second) {
            diag.error(key_at, f.path, "duplicate field " + in_quotes(name));
            ok = false;
            continue;
        }
        const auto reserved =
            std::find(std::begin(kGatewayBodyFields), std::end(kGatewayBodyFields), name);
        if (top_level && reserved != std::end(kGatewayBodyFields)) {
            diag.error(key_at, f.path,
                       in_quotes(name) + " is set by the gateway from the client's request");
            ok = false;
            continue;
        }
        const YAML::Node& value = entry.second;
        const Field field{value, value.IsNull() ? key_at : position_of(value.Mark()),
                          f.path + "." + name};
        out.Key(name.data(), json_size(name));
        if (!write_json(diag, field, out, false)) ok = false;
    }
    out.EndObject();
    return ok;
}

/// `body:` as the text of one JSON object; "" when absent, null or without fields.
void read_extra_body(Diagnostics& diag, const Field& f, std::string& out) {
    if (f.node.IsNull()) return;
    if (!f.node.IsMap()) {
        diag.error(f.at, f.path, "expected a map of body fields, got " + describe(f.node));
        return;
    }
    if (f.node.size() == 0) return;
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    if (write_json(diag, f, writer, true)) out.assign(buffer.GetString(), buffer.GetSize());
}

// ---------------------------------------------------------------------------------------------
// The loader: one function per section, all reporting into one Diagnostics

class Loader {
  public:
    Loader(Diagnostics& diag, EnvPolicy env_policy) : diag_(diag), env_policy_(env_policy) {}

    void load(const YAML::Node& root, Config& config);

  private:
    void load_listen(const MapView& m, std::string_view key, std::string& out);
    void load_env_name(const MapView& m, std::string_view key, std::string& out);
    void load_admin(const Field& f, AdminConfig& admin);
    void load_state(const Field& f, StateConfig& state);
    void load_limits(const Field& f, LimitsConfig& limits);
    void load_log(const Field& f, LogConfig& log);
    void load_keys(const Field& f, std::vector<ClientKeyConfig>& keys);
    void load_key(const Field& f, ClientKeyConfig& key);
    void load_providers(const Field& f, std::vector<ProviderConfig>& providers);
    void load_provider(const Field& f, ProviderConfig& provider);
    void load_base_url(const MapView& m, ProviderConfig& provider);
    void load_ca_file(const MapView& m, std::string& out);
    void load_price(const Field& f, PriceConfig& price);
    void load_headers(const Field& f, std::map<std::string, std::string>& out, bool lower_case);
    void load_routes(const Field& f, std::vector<RouteConfig>& routes);
    void load_route(const Field& f, RouteConfig& route);
    void load_route_name(const MapView& m, std::string& out);
    void load_route_targets(const MapView& m, RouteConfig& route);
    void load_match(const Field& f, MatchConfig& match);
    TargetConfig load_target(const Field& f, bool weighted);
    void load_target_list(const Field& f, std::vector<TargetConfig>& out, bool weighted);
    void load_provider_ref(const MapView& m, std::string& out);
    void load_retries(const Field& f, RetryConfig& retries);
    void load_shadow(const Field& f, ShadowConfig& shadow);
    void load_judge(const Field& f, JudgeConfig& judge,
                    const std::optional<TargetConfig>& candidate);
    void load_promotion(const Field& f, PromotionConfig& promotion);
    void load_ramp(const Field& f, std::vector<std::uint32_t>& ramp);
    void report_env(const Field& f, std::string_view message);

    Diagnostics& diag_;
    EnvPolicy env_policy_;
    bool providers_known_ = false;  ///< false: the providers section itself is broken
    std::set<std::string, std::less<>> provider_names_;
    std::set<std::string, std::less<>> key_names_;
    std::map<std::string, int, std::less<>> route_lines_;  ///< route name -> line it is defined
};

void Loader::load(const YAML::Node& root, Config& config) {
    if (root.IsNull()) {
        diag_.error({}, "",
                    "the config is empty: at least one provider and one route are required");
        return;
    }
    MapView m(diag_, Field{root, position_of(root.Mark()), ""},
              {"listen", "admin", "state", "limits", "log", "keys", "providers", "routes"});
    if (!m.valid()) return;
    load_listen(m, "listen", config.listen);
    if (const auto* f = m.get("admin")) load_admin(*f, config.admin);
    if (const auto* f = m.get("state")) load_state(*f, config.state);
    if (const auto* f = m.get("limits")) load_limits(*f, config.limits);
    if (const auto* f = m.get("log")) load_log(*f, config.log);
    // Routes refer to keys and providers, so those are read first whatever the file order.
    if (const auto* f = m.get("keys")) load_keys(*f, config.keys);
    if (m.require("providers")) load_providers(*m.get("providers"), config.providers);
    if (m.require("routes")) load_routes(*m.get("routes"), config.routes);
}

void Loader::load_listen(const MapView& m, std::string_view key, std::string& out) {
    if (!m.string(key, out) || !m.get(key)) return;
    if (auto message = listen_error(out); !message.empty()) {
        diag_.error(m.get(key)->at, m.get(key)->path, message);
    }
}

void Loader::report_env(const Field& f, std::string_view message) {
    if (env_policy_ == EnvPolicy::require) {
        diag_.error(f.at, f.path, message);
    } else {
        diag_.warning(f.at, f.path, message);
    }
}

// Only the variable's name is kept; its value is read here just to see that it is set.
void Loader::load_env_name(const MapView& m, std::string_view key, std::string& out) {
    const auto* f = m.get(key);
    if (!f || !read_string(diag_, *f, out) || out.empty()) return;
    if (!is_env_name(out)) {
        // Never echo the value: a user may have pasted the secret itself here.
        diag_.error(f->at, f->path,
                    "must be the name of an environment variable (letters, digits and '_'), "
                    "not the secret itself");
        out.clear();
        return;
    }
    const char* value = std::getenv(out.c_str());
    if (value == nullptr) {
        report_env(*f, "environment variable " + in_quotes(out) + " is not set");
    } else if (*value == '\0') {
        report_env(*f, "environment variable " + in_quotes(out) + " is empty");
    }
}

void Loader::load_admin(const Field& f, AdminConfig& admin) {
    MapView m(diag_, f, {"listen", "token_env"});
    if (!m.valid()) return;
    load_listen(m, "listen", admin.listen);
    load_env_name(m, "token_env", admin.token_env);
}

void Loader::load_state(const Field& f, StateConfig& state) {
    MapView m(diag_, f, {"path", "url"});
    if (!m.valid()) return;
    if (m.string("path", state.path) && m.get("path") && state.path.empty()) {
        diag_.error(m.get("path")->at, m.get("path")->path, "must not be empty");
    }
    if (!m.string("url", state.url) || state.url.empty()) return;
    if (!state.url.starts_with("redis://") && !state.url.starts_with("rediss://")) {
        // The URL is not echoed: it may carry a password.
        diag_.error(m.get("url")->at, m.get("url")->path, "expected a redis:// or rediss:// URL");
    }
}

void Loader::load_limits(const Field& f, LimitsConfig& limits) {
    MapView m(diag_, f,
              {"max_body_bytes", "max_header_bytes", "client_timeout", "keepalive_timeout",
               "max_connections", "max_inflight", "drain_timeout"});
    if (!m.valid()) return;
    m.size("max_body_bytes", limits.max_body_bytes);
    m.size("max_header_bytes", limits.max_header_bytes);
    m.duration("client_timeout", limits.client_timeout, true);
    m.duration("keepalive_timeout", limits.keepalive_timeout);
    m.count("max_connections", limits.max_connections, 1);
    m.count("max_inflight", limits.max_inflight);
    m.duration("drain_timeout", limits.drain_timeout);
}

void Loader::load_log(const Field& f, LogConfig& log) {
    MapView m(diag_, f, {"level", "format"});
    if (!m.valid()) return;
    m.choice<std::string>("level", log.level,
                          {{"trace", "trace"},
                           {"debug", "debug"},
                           {"info", "info"},
                           {"warn", "warn"},
                           {"error", "error"}});
    m.choice<std::string>("format", log.format, {{"json", "json"}, {"text", "text"}});
}

void Loader::load_keys(const Field& f, std::vector<ClientKeyConfig>& keys) {
    for_each_item(diag_, f, [&](const Field& item) { load_key(item, keys.emplace_back()); });
}

void Loader::load_key(const Field& f, ClientKeyConfig& key) {
    MapView m(diag_, f, {"name", "key_env"});
    if (!m.valid()) return;
    if (m.require("name") && m.string("name", key.name)) {
        const Field& name = *m.get("name");
        if (key.name.empty()) {
            diag_.error(name.at, name.path, "must not be empty");
        } else if (!key_names_.insert(key.name).second) {
            diag_.error(name.at, name.path, "duplicate key name " + in_quotes(key.name));
        }
    }
    if (m.require("key_env")) {
        load_env_name(m, "key_env", key.key_env);
        if (key.key_env.empty() && m.get("key_env")->node.IsScalar()) {
            diag_.error(m.get("key_env")->at, m.get("key_env")->path, "must not be empty");
        }
    }
}

void Loader::load_providers(const Field& f, std::vector<ProviderConfig>& providers) {
    if (!f.node.IsMap()) {
        diag_.error(f.at, f.path, "expected a map of providers, got " + describe(f.node));
        return;
    }
    providers_known_ = true;
    for (const auto& entry : f.node) {
        const Position key_at = position_of(entry.first.Mark());
        if (!entry.first.IsScalar() || entry.first.Scalar().empty()) {
            diag_.error(key_at, f.path, "expected a provider name, got " + describe(entry.first));
            continue;
        }
        const std::string& name = entry.first.Scalar();
        if (!provider_names_.insert(name).second) {
            diag_.error(key_at, f.path, "duplicate provider " + in_quotes(name));
            continue;
        }
        const YAML::Node& value = entry.second;
        auto& provider = providers.emplace_back();
        provider.name = name;
        load_provider(
            Field{value, value.IsNull() ? key_at : position_of(value.Mark()), f.path + "." + name},
            provider);
    }
    if (providers.empty()) diag_.error(f.at, f.path, "at least one provider is required");
}

void Loader::load_provider(const Field& f, ProviderConfig& provider) {
    MapView m(diag_, f,
              {"kind", "base_url", "api_key_env", "timeout", "connect_timeout",
               "first_byte_timeout", "stream_idle_timeout", "max_connections", "headers", "body",
               "max_tokens_default", "price", "ca_file", "tls_verify", "circuit_breaker"});
    if (!m.valid()) return;
    m.choice<ProviderKind>(
        "kind", provider.kind,
        {{"openai", ProviderKind::openai}, {"anthropic", ProviderKind::anthropic}});
    load_base_url(m, provider);
    load_env_name(m, "api_key_env", provider.api_key_env);
    m.duration("timeout", provider.timeout, true);
    m.duration("connect_timeout", provider.connect_timeout, true);
    m.duration("first_byte_timeout", provider.first_byte_timeout, true);
    m.duration("stream_idle_timeout", provider.stream_idle_timeout, true);
    m.count("max_connections", provider.max_connections, 1);
    if (const auto* h = m.get("headers")) load_headers(*h, provider.headers, false);
    if (const auto* b = m.get("body")) read_extra_body(diag_, *b, provider.extra_body_json);
    m.count("max_tokens_default", provider.max_tokens_default, 1);
    if (const auto* p = m.get("price")) load_price(*p, provider.price);
    load_ca_file(m, provider.ca_file);
    m.boolean("tls_verify", provider.tls_verify);
    if (const auto* c = m.get("circuit_breaker")) {
        MapView breaker(diag_, *c, {"failures", "cooldown"});
        if (breaker.valid()) {
            breaker.count("failures", provider.circuit_breaker.failures);
            breaker.duration("cooldown", provider.circuit_breaker.cooldown, true);
        }
    }
}

void Loader::load_base_url(const MapView& m, ProviderConfig& provider) {
    if (!m.require("base_url") || !m.string("base_url", provider.base_url)) return;
    const Field& f = *m.get("base_url");
    if (auto message = parse_upstream_url(provider.base_url, provider.address); !message.empty()) {
        diag_.error(f.at, f.path, message);
    }
}

void Loader::load_ca_file(const MapView& m, std::string& out) {
    if (!m.string("ca_file", out) || out.empty()) return;
    const Field& f = *m.get("ca_file");
    // Read it the bounded way (a FIFO or a device here must not hang or bloat the reload);
    // OpenSSL reads it again when the TLS context is built.
    std::string text;
    std::string reason;
    if (!read_bounded_file(out, kMaxConfigFileBytes, text, reason)) {
        diag_.error(f.at, f.path, "cannot read " + in_quotes(out) + ": " + reason);
    }
}

void Loader::load_price(const Field& f, PriceConfig& price) {
    MapView m(diag_, f, {"input_per_mtok", "output_per_mtok"});
    if (!m.valid()) return;
    m.number("input_per_mtok", price.input_per_mtok, kNonNegative);
    m.number("output_per_mtok", price.output_per_mtok, kNonNegative);
}

void Loader::load_headers(const Field& f, std::map<std::string, std::string>& out,
                          bool lower_case) {
    if (f.node.IsNull()) return;
    if (!f.node.IsMap()) {
        diag_.error(f.at, f.path, "expected a map of headers, got " + describe(f.node));
        return;
    }
    std::set<std::string> seen;  // header names compare case-insensitively
    for (const auto& entry : f.node) {
        const Position key_at = position_of(entry.first.Mark());
        const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
        if (!is_header_name(name)) {
            diag_.error(key_at, f.path, "invalid header name " + describe(entry.first));
            continue;
        }
        if (!seen.insert(to_lower(name)).second) {
            diag_.error(key_at, f.path, "duplicate header " + in_quotes(name));
            continue;
        }
        const Field value{entry.second,
                          entry.second.IsNull() ? key_at : position_of(entry.second.Mark()),
                          f.path + "." + name};
        std::string text;
        if (!read_string(diag_, value, text)) continue;
        if (has_control_char(text)) {
            diag_.error(value.at, value.path, "a header value must not contain CR, LF or NUL");
            continue;
        }
        out[lower_case ? to_lower(name) : name] = text;
    }
}

void Loader::load_routes(const Field& f, std::vector<RouteConfig>& routes) {
    if (!for_each_item(diag_, f,
                       [&](const Field& item) { load_route(item, routes.emplace_back()); })) {
        return;
    }
    if (routes.empty()) diag_.error(f.at, f.path, "at least one route is required");
}

void Loader::load_route(const Field& f, RouteConfig& route) {
    MapView m(diag_, f,
              {"name", "match", "primary", "candidate", "targets", "fallbacks", "retries",
               "timeout", "shadow", "judge", "promotion"});
    if (!m.valid()) return;
    load_route_name(m, route.name);
    if (const auto* x = m.get("match")) load_match(*x, route.match);
    load_route_targets(m, route);
    if (const auto* x = m.get("retries")) load_retries(*x, route.retries);
    m.duration("timeout", route.timeout, true);
    if (const auto* x = m.get("shadow")) load_shadow(*x, route.shadow);
    if (const auto* x = m.get("judge")) load_judge(*x, route.judge, route.candidate);
    if (const auto* x = m.get("promotion")) load_promotion(*x, route.promotion);
}

void Loader::load_route_name(const MapView& m, std::string& out) {
    if (!m.require("name") || !m.string("name", out)) return;
    const Field& f = *m.get("name");
    if (out.empty()) {
        diag_.error(f.at, f.path, "must not be empty");
        return;
    }
    auto [it, inserted] = route_lines_.emplace(out, f.at.line);
    if (!inserted) {
        diag_.error(f.at, f.path,
                    "duplicate route name " + in_quotes(out) + " (first defined on line " +
                        std::to_string(it->second) + ")");
    }
}

void Loader::load_route_targets(const MapView& m, RouteConfig& route) {
    if (const auto* x = m.get("primary")) route.primary = load_target(*x, false);
    if (const auto* x = m.get("candidate")) route.candidate = load_target(*x, false);
    if (const auto* x = m.get("targets")) {
        load_target_list(*x, route.targets, true);
        if (route.targets.empty()) diag_.error(x->at, x->path, "must not be empty");
    }
    if (const auto* x = m.get("fallbacks")) load_target_list(*x, route.fallbacks, false);
    const auto* primary = m.get("primary");
    const auto* targets = m.get("targets");
    if (primary && targets) {
        diag_.error(targets->at, targets->path,
                    "a route has either 'primary' or 'targets', not both");
    } else if (!primary && !targets) {
        diag_.error(m.at(), m.path(), "a route needs 'primary' or 'targets'");
    }
}

void Loader::load_match(const Field& f, MatchConfig& match) {
    MapView m(diag_, f, {"model", "headers", "keys"});
    if (!m.valid()) return;
    m.string("model", match.model);
    if (const auto* h = m.get("headers")) load_headers(*h, match.headers, true);
    const auto* keys = m.get("keys");
    if (!keys) return;
    for_each_item(diag_, *keys, [&](const Field& item) {
        std::string name;
        if (!read_string(diag_, item, name)) return;
        if (key_names_.count(name) == 0) {
            diag_.error(item.at, item.path, "unknown client key " + in_quotes(name));
            return;
        }
        match.keys.push_back(name);
    });
}

TargetConfig Loader::load_target(const Field& f, bool weighted) {
    TargetConfig target;
    MapView m(diag_, f, {"provider", "model", "weight", "headers", "body"});
    if (!m.valid()) return target;
    load_provider_ref(m, target.provider);
    if (m.require("model") && m.string("model", target.model) && target.model.empty()) {
        diag_.error(m.get("model")->at, m.get("model")->path, "must not be empty");
    }
    if (const auto* w = m.get("weight")) {
        if (weighted) {
            read_count(diag_, *w, target.weight, 1);
        } else {
            diag_.error(w->at, w->path, "'weight' is only allowed in 'targets'");
        }
    }
    if (const auto* h = m.get("headers")) load_headers(*h, target.headers, false);
    if (const auto* b = m.get("body")) read_extra_body(diag_, *b, target.extra_body_json);
    return target;
}

void Loader::load_target_list(const Field& f, std::vector<TargetConfig>& out, bool weighted) {
    for_each_item(diag_, f, [&](const Field& item) { out.push_back(load_target(item, weighted)); });
}

// A bad cross-reference is reported at the value that names the missing provider.
void Loader::load_provider_ref(const MapView& m, std::string& out) {
    if (!m.require("provider") || !m.string("provider", out)) return;
    const Field& f = *m.get("provider");
    if (out.empty()) {
        diag_.error(f.at, f.path, "must not be empty");
    } else if (providers_known_ && provider_names_.count(out) == 0) {
        diag_.error(f.at, f.path, "unknown provider " + in_quotes(out));
    }
}

void Loader::load_retries(const Field& f, RetryConfig& retries) {
    MapView m(diag_, f, {"attempts", "backoff"});
    if (!m.valid()) return;
    m.count("attempts", retries.attempts);
    m.duration("backoff", retries.backoff);
}

void Loader::load_shadow(const Field& f, ShadowConfig& shadow) {
    MapView m(diag_, f, {"sample_rate", "max_inflight", "queue"});
    if (!m.valid()) return;
    m.number("sample_rate", shadow.sample_rate, kUnit);
    m.count("max_inflight", shadow.max_inflight, 1);
    m.count("queue", shadow.queue);
}

void Loader::load_judge(const Field& f, JudgeConfig& judge,
                        const std::optional<TargetConfig>& candidate) {
    MapView m(diag_, f,
              {"provider", "model", "prompt_file", "pass_score", "swap", "max_answer_bytes",
               "body"});
    if (!m.valid()) return;
    load_provider_ref(m, judge.provider);
    const bool model_ok = m.require("model") && m.string("model", judge.model);
    if (model_ok && judge.model.empty()) {
        diag_.error(m.get("model")->at, m.get("model")->path, "must not be empty");
    }
    m.string("prompt_file", judge.prompt_file);
    m.number("pass_score", judge.pass_score, Bounds{0.0, 100.0});
    m.boolean("swap", judge.swap);
    m.size("max_answer_bytes", judge.max_answer_bytes);
    // The same fields, checks and YAML-to-JSON typing as a provider's `body:`.
    if (const auto* b = m.get("body")) read_extra_body(diag_, *b, judge.extra_body_json);
    // A model grading its own answers always agrees with itself: the evidence would be void.
    if (model_ok && candidate && candidate->provider == judge.provider &&
        candidate->model == judge.model && !judge.model.empty()) {
        diag_.error(m.get("model")->at, m.get("model")->path,
                    "the judge must not be the candidate itself (" + judge.provider + "/" +
                        judge.model + ")");
    }
}

void Loader::load_promotion(const Field& f, PromotionConfig& promotion) {
    MapView m(diag_, f,
              {"mode", "window", "min_samples", "threshold", "hold", "rollback_threshold",
               "confidence", "ramp", "step", "cooldown", "shadow_after_promotion"});
    if (!m.valid()) return;
    m.choice<PromotionMode>("mode", promotion.mode,
                            {{"shadow", PromotionMode::shadow},
                             {"auto", PromotionMode::automatic},
                             {"pin-primary", PromotionMode::pin_primary},
                             {"pin-candidate", PromotionMode::pin_candidate}});
    const bool window_ok = m.count("window", promotion.window, 1);
    const bool min_samples_ok = m.count("min_samples", promotion.min_samples);
    if (window_ok && min_samples_ok && promotion.min_samples > promotion.window) {
        const Field at = m.get("min_samples") ? m.where("min_samples") : m.where("window");
        diag_.error(at.at, at.path,
                    "min_samples (" + std::to_string(promotion.min_samples) +
                        ") must not exceed window (" + std::to_string(promotion.window) + ")");
    }
    const bool threshold_ok = m.number("threshold", promotion.threshold, kUnit);
    const bool rollback_ok = m.number("rollback_threshold", promotion.rollback_threshold, kUnit);
    if (threshold_ok && rollback_ok && promotion.rollback_threshold >= promotion.threshold) {
        const Field at =
            m.get("rollback_threshold") ? m.where("rollback_threshold") : m.where("threshold");
        diag_.error(at.at, at.path,
                    "rollback_threshold (" + format_number(promotion.rollback_threshold) +
                        ") must be below threshold (" + format_number(promotion.threshold) + ")");
    }
    m.duration("hold", promotion.hold);
    m.number("confidence", promotion.confidence, kUnitOpen);
    if (const auto* r = m.get("ramp")) load_ramp(*r, promotion.ramp);
    m.duration("step", promotion.step);
    m.duration("cooldown", promotion.cooldown);
    m.number("shadow_after_promotion", promotion.shadow_after_promotion, kUnit);
}

void Loader::load_ramp(const Field& f, std::vector<std::uint32_t>& ramp) {
    std::vector<std::uint32_t> steps;
    Position last_at = f.at;
    std::string last_path = f.path;
    bool items_ok = true;
    const bool list_ok = for_each_item(diag_, f, [&](const Field& item) {
        std::uint32_t step = 0;
        if (!read_count(diag_, item, step, 1, 100)) {
            items_ok = false;
            return;
        }
        if (!steps.empty() && step <= steps.back()) {
            diag_.error(item.at, item.path,
                        "ramp steps must increase (" + std::to_string(step) + " after " +
                            std::to_string(steps.back()) + ")");
            items_ok = false;
        }
        steps.push_back(step);
        last_at = item.at;
        last_path = item.path;
    });
    if (!list_ok) return;
    if (steps.empty() && items_ok) {
        diag_.error(f.at, f.path, "must not be empty (e.g. [100] or [10, 50, 100])");
    } else if (items_ok && steps.back() != 100) {
        diag_.error(last_at, last_path, "the last ramp step must be 100");
    }
    if (items_ok && !steps.empty()) ramp = std::move(steps);
}

// ---------------------------------------------------------------------------------------------
// URLs and files

/// "host", "host:port" or "[v6]:port" of a URL into `address` (whose `tls` is already set).
std::string parse_authority(std::string_view authority, UpstreamAddress& address) {
    std::string_view host = authority;
    std::optional<std::string_view> port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return "unterminated IPv6 address in the URL";
        host = authority.substr(1, close - 1);
        const auto after = authority.substr(close + 1);
        if (!after.empty() && after.front() != ':') {
            return "unexpected text after the IPv6 address";
        }
        if (!after.empty()) port = after.substr(1);
    } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return "an IPv6 host needs brackets, e.g. http://[::1]:8080";
        }
    }
    if (host.empty()) return "the URL has no host";
    address.port = address.tls ? 443 : 80;
    if (port) {
        std::uint64_t number = 0;
        if (port->size() > 5 || !parse_uint(*port, number) || number == 0 || number > 65535) {
            return "the URL port must be between 1 and 65535";
        }
        address.port = static_cast<std::uint16_t>(number);
    }
    address.host = std::string(host);
    return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

LoadResult load_config_file(const std::string& path, EnvPolicy env_policy) {
    std::string text;
    std::string reason;
    if (!read_bounded_file(path, kMaxConfigFileBytes, text, reason)) {
        LoadResult result;
        result.errors.push_back(ConfigError{path + ":1:1: cannot read file: " + reason});
        return result;
    }
    return load_config_string(text, path, env_policy);
}

LoadResult load_config_string(const std::string& yaml_text, const std::string& display_path,
                              EnvPolicy env_policy) {
    Diagnostics diag(display_path);
    auto config = std::make_shared<Config>();
    config->source_path = display_path;
    try {
        const YAML::Node root = YAML::Load(yaml_text);
        Loader(diag, env_policy).load(root, *config);
    } catch (const YAML::Exception& e) {
        diag.error(position_of(e.mark), "", "invalid YAML: " + e.msg);
    } catch (const std::exception& e) {
        diag.error({}, "", std::string("cannot load the config: ") + e.what());
    }
    return diag.finish(std::move(config));
}

bool parse_duration(std::string_view text, Duration& out) {
    const auto digits = text.find_first_not_of("0123456789");
    if (digits == 0 || digits == std::string_view::npos) return false;
    const auto unit = text.substr(digits);
    std::int64_t factor = 0;
    if (unit == "ms") {
        factor = 1;
    } else if (unit == "s") {
        factor = 1000;
    } else if (unit == "m") {
        factor = 60 * 1000;
    } else if (unit == "h") {
        factor = 60 * 60 * 1000;
    } else {
        return false;
    }
    std::uint64_t value = 0;
    if (!parse_uint(text.substr(0, digits), value)) return false;
    if (value > static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max() / factor)) {
        return false;
    }
    out = Duration(static_cast<Duration::rep>(value) * factor);
    return true;
}

bool parse_size(std::string_view text, std::uint64_t& out) {
    auto digits = text.find_first_not_of("0123456789");
    if (digits == 0) return false;
    if (digits == std::string_view::npos) digits = text.size();
    const auto unit = text.substr(digits);
    int shift = 0;
    if (unit.empty() || unit == "B") {
        shift = 0;
    } else if (unit == "KiB") {
        shift = 10;
    } else if (unit == "MiB") {
        shift = 20;
    } else if (unit == "GiB") {
        shift = 30;
    } else {
        return false;
    }
    std::uint64_t value = 0;
    if (!parse_uint(text.substr(0, digits), value)) return false;
    if (value > (std::numeric_limits<std::uint64_t>::max() >> shift)) return false;
    out = value << shift;
    return true;
}

std::string parse_upstream_url(std::string_view url, UpstreamAddress& out) {
    UpstreamAddress address;
    std::string_view rest;
    const std::string lower = to_lower(url.substr(0, 8));
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
    if (auto message = parse_authority(authority, address); !message.empty()) return message;
    std::string_view base_path = path;
    while (!base_path.empty() && base_path.back() == '/') base_path.remove_suffix(1);
    address.base_path = std::string(base_path);
    out = std::move(address);
    return "";
}

}  // namespace turnout::routing
