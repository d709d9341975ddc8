#pragma once
/// Internal to the loader: typed reads of YAML values that report every problem into
/// Diagnostics and carry on. A reader returns false when the value is wrong (already
/// reported) and leaves its output alone then.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/values.hpp"

namespace turnout::config::detail {

/// The range a number must fall in, and how a message says it.
struct Bounds {
    double min = -std::numeric_limits<double>::infinity();
    double max = std::numeric_limits<double>::infinity();
    bool open = false;  ///< exclusive at both ends

    bool contains(double v) const { return open ? (v > min && v < max) : (v >= min && v <= max); }
    std::string describe() const;
};

constexpr Bounds kUnit{0.0, 1.0};
constexpr Bounds kUnitOpen{0.0, 1.0, true};
constexpr Bounds kNonNegative{0.0};

constexpr std::uint32_t kMaxCount = std::numeric_limits<std::uint32_t>::max();

template <typename T>
using Choices = std::initializer_list<std::pair<std::string_view, T>>;

/// The scalar's text; reports "expected `what`, got ..." for a map, a list or nothing.
bool read_scalar(Diagnostics& diag, const Field& f, std::string_view what, std::string& out);

/// The scalar `f` converted by `parse(text, value)`. A text that does not parse is reported
/// as `invalid(what, text)`, a value that parses but is not allowed as `check(value, text)`
/// (a non-empty message). Then `out` = the value.
template <typename Value, typename Out, typename Parse, typename Invalid, typename Check>
bool read_parsed(Diagnostics& diag, const Field& f, std::string_view what, Out& out, Parse parse,
                 Invalid invalid, Check check) {
    std::string text;
    if (!read_scalar(diag, f, what, text)) return false;
    Value value{};
    if (!parse(text, value)) {
        diag.error(f, invalid(what, text));
        return false;
    }
    if (const std::string problem = check(value, text); !problem.empty()) {
        diag.error(f, problem);
        return false;
    }
    out = static_cast<Out>(value);
    return true;
}

bool read_string(Diagnostics& diag, const Field& f, std::string& out);
bool read_bool(Diagnostics& diag, const Field& f, bool& out);
bool read_count(Diagnostics& diag, const Field& f, std::uint32_t& out, std::uint32_t min = 0,
                std::uint32_t max = kMaxCount);
bool read_number(Diagnostics& diag, const Field& f, double& out, Bounds bounds);
bool read_duration(Diagnostics& diag, const Field& f, Duration& out, bool positive);
bool read_size(Diagnostics& diag, const Field& f, std::uint64_t& out);

/// "a, b or c".
std::string join_choices(const std::vector<std::string_view>& names);

/// One of the names in `choices`, as its value.
template <typename T>
bool read_choice(Diagnostics& diag, const Field& f, T& out, Choices<T> choices) {
    const auto parse = [&](const std::string& text, T& value) {
        for (const auto& [name, choice] : choices) {
            if (name == text) {
                value = choice;
                return true;
            }
        }
        return false;
    };
    const auto unknown = [&](std::string_view, const std::string& text) {
        std::vector<std::string_view> names;
        for (const auto& choice : choices) names.push_back(choice.first);
        return "unknown value " + in_quotes(text) + " (expected " + join_choices(names) + ")";
    };
    return read_parsed<T>(diag, f, "a string", out, parse, unknown,
                          [](const T&, const std::string&) { return std::string(); });
}

/// Reports "expected `what`, got ..." unless `f` is a map.
bool expect_map(Diagnostics& diag, const Field& f, std::string_view what);

/// Calls `each(Field)` for every item of a list; a null value counts as an empty list.
template <typename Each>
bool for_each_item(Diagnostics& diag, const Field& list, Each&& each) {
    if (list.node.IsNull()) return true;
    if (!list.node.IsSequence()) {
        diag.error(list, expected_got("a list", list.node));
        return false;
    }
    std::size_t index = 0;
    for (const auto& item : list.node) {
        const std::string path = list.path + "[" + std::to_string(index++) + "]";
        each(Field{item, value_position(item, list.at), path});
    }
    return true;
}

/// One key and value of a YAML map, the key not checked yet.
struct MapEntry {
    const YAML::Node& key;
    Position key_at;
    const YAML::Node& value;

    /// The key's text. When it is not a scalar (or is empty and `allow_empty` is false),
    /// reports "expected `what`, got ..." at the key, under `path`, and returns null.
    const std::string* key_name(Diagnostics& diag, std::string_view path, std::string_view what,
                                bool allow_empty = true) const;

    /// The value as a Field at `path`, reported at the key when the value is null.
    Field value_field(std::string path) const {
        return Field{value, value_position(value, key_at), std::move(path)};
    }
};

/// Calls `each(MapEntry)` for every entry of `map`, which must be a map.
template <typename Each>
void for_each_entry(const Field& map, Each&& each) {
    for (const auto& entry : map.node) {
        each(MapEntry{entry.first, position_of(entry.first.Mark()), entry.second});
    }
}

/// A YAML map checked against the keys it may hold. Unknown and repeated keys are reported
/// here, once, so section readers only ask for keys they know. A null value (`key:` with
/// nothing after it) counts as an empty map.
class MapView {
  public:
    MapView(Diagnostics& diag, Field self, std::initializer_list<std::string_view> known);

    bool valid() const { return valid_; }
    const Position& at() const { return self_.at; }
    const std::string& path() const { return self_.path; }

    const Field* get(std::string_view key) const;

    /// The value's position and path, or the map's when the key is absent.
    Field where(std::string_view key) const;

    /// Reports `message` at the key's value, or at the map when the key is absent.
    void error(std::string_view key, std::string_view message) const;

    /// Reports a missing key at the map; true when it is present.
    bool require(std::string_view key) const;

    // Each reader leaves `out` alone when the key is absent. It returns false only when the
    // key is present and wrong, so cross-field checks can skip values already reported.
    bool string(std::string_view key, std::string& out) const {
        return read_present(key, read_string, out);
    }
    bool boolean(std::string_view key, bool& out) const {
        return read_present(key, read_bool, out);
    }
    bool count(std::string_view key, std::uint32_t& out, std::uint32_t min = 0) const {
        return read_present(key, read_count, out, min, kMaxCount);
    }
    bool number(std::string_view key, double& out, Bounds bounds) const {
        return read_present(key, read_number, out, bounds);
    }
    bool duration(std::string_view key, Duration& out, bool positive = false) const {
        return read_present(key, read_duration, out, positive);
    }
    bool size(std::string_view key, std::uint64_t& out) const {
        return read_present(key, read_size, out);
    }
    template <typename T>
    bool choice(std::string_view key, T& out, Choices<T> choices) const {
        return read_present(key, read_choice<T>, out, choices);
    }

    /// A required string that must not be empty: true when it is present, a string and not
    /// empty; each problem is reported.
    bool required_text(std::string_view key, std::string& out) const;

  private:
    template <typename Read, typename... Args>
    bool read_present(std::string_view key, Read read, Args&&... args) const {
        const auto* f = get(key);
        return !f || read(diag_, *f, std::forward<Args>(args)...);
    }

    void collect(std::initializer_list<std::string_view> known);

    Diagnostics& diag_;
    Field self_;
    bool valid_ = false;
    std::vector<std::pair<std::string, Field>> fields_;
};

}  // namespace turnout::config::detail
