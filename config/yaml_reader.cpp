#include "config/yaml_reader.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "config/values.hpp"

namespace turnout::config::detail {
namespace {

/// "expected `what`, got 'text'": the message of a scalar that does not parse.
std::string expected_text(std::string_view what, const std::string& text) {
    return "expected " + std::string(what) + ", got " + in_quotes(text);
}

/// "invalid `noun` 'text': expected `form`": the message of a value with a unit.
auto invalid_with_unit(std::string_view noun, std::string_view form) {
    return [noun, form](std::string_view, const std::string& text) {
        return "invalid " + std::string(noun) + " " + in_quotes(text) + ": expected " +
               std::string(form);
    };
}

std::string no_problem(const auto&, const std::string&) { return ""; }

/// A check for read_parsed that refuses a zero value with `message` when `refuse` is set.
auto nonzero(bool refuse, std::string_view message) {
    return [refuse, message](const auto& value, const std::string&) -> std::string {
        return refuse && value == std::remove_cvref_t<decltype(value)>{} ? std::string(message)
                                                                         : "";
    };
}

}  // namespace

std::string Bounds::describe() const {
    if (open) return "greater than " + format_number(min) + " and less than " + format_number(max);
    if (std::isinf(max)) return "at least " + format_number(min);
    return "between " + format_number(min) + " and " + format_number(max);
}

bool read_scalar(Diagnostics& diag, const Field& f, std::string_view what, std::string& out) {
    if (!f.node.IsScalar()) {
        diag.error(f, expected_got(what, f.node));
        return false;
    }
    out = f.node.Scalar();
    return true;
}

bool read_string(Diagnostics& diag, const Field& f, std::string& out) {
    return read_scalar(diag, f, "a string", out);
}

bool read_bool(Diagnostics& diag, const Field& f, bool& out) {
    return read_parsed<bool>(diag, f, "true or false", out, parse_bool, expected_text,
                             no_problem<bool>);
}

bool read_count(Diagnostics& diag, const Field& f, std::uint32_t& out, std::uint32_t min,
                std::uint32_t max) {
    const auto in_range = [&](std::uint64_t value, const std::string& text) -> std::string {
        if (value >= min && value <= max) return "";
        std::string range;
        if (max != kMaxCount) {
            range = "between " + std::to_string(min) + " and " + std::to_string(max);
        } else if (value < min) {
            range = "at least " + std::to_string(min);
        } else {
            range = "at most " + std::to_string(max);
        }
        return "must be " + range + ", got " + text;
    };
    return read_parsed<std::uint64_t>(diag, f, "a non-negative integer", out, parse_uint,
                                      expected_text, in_range);
}

bool read_number(Diagnostics& diag, const Field& f, double& out, Bounds bounds) {
    const auto in_bounds = [&](double value, const std::string& text) -> std::string {
        if (bounds.contains(value)) return "";
        return "must be " + bounds.describe() + ", got " + text;
    };
    return read_parsed<double>(diag, f, "a number", out, parse_double, expected_text, in_bounds);
}

bool read_duration(Diagnostics& diag, const Field& f, Duration& out, bool positive) {
    return read_parsed<Duration>(
        diag, f, "a duration", out, parse_duration,
        invalid_with_unit("duration", "an integer with ms, s, m or h (e.g. 250ms, 30s, 10m)"),
        nonzero(positive, "must be greater than 0s"));
}

bool read_size(Diagnostics& diag, const Field& f, std::uint64_t& out) {
    return read_parsed<std::uint64_t>(
        diag, f, "a size", out, parse_size,
        invalid_with_unit("size", "an integer with B, KiB, MiB or GiB, or a number of bytes"),
        nonzero(true, "must be greater than 0"));
}

std::string join_choices(const std::vector<std::string_view>& names) {
    std::string text;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) text += (i + 1 == names.size()) ? " or " : ", ";
        text += names[i];
    }
    return text;
}

bool expect_map(Diagnostics& diag, const Field& f, std::string_view what) {
    if (f.node.IsMap()) return true;
    diag.error(f, expected_got(what, f.node));
    return false;
}

const std::string* MapEntry::key_name(Diagnostics& diag, std::string_view path,
                                      std::string_view what, bool allow_empty) const {
    if (key.IsScalar() && (allow_empty || !key.Scalar().empty())) return &key.Scalar();
    diag.error(key_at, path, expected_got(what, key));
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// MapView

MapView::MapView(Diagnostics& diag, Field self, std::initializer_list<std::string_view> known)
    : diag_(diag), self_(std::move(self)) {
    valid_ = self_.node.IsNull() || expect_map(diag_, self_, "a map");
    if (valid_ && !self_.node.IsNull()) collect(known);
}

const Field* MapView::get(std::string_view key) const {
    for (const auto& [name, field] : fields_) {
        if (name == key) return &field;
    }
    return nullptr;
}

Field MapView::where(std::string_view key) const {
    if (const auto* f = get(key)) return *f;
    return self_;
}

void MapView::error(std::string_view key, std::string_view message) const {
    diag_.error(where(key), message);
}

bool MapView::require(std::string_view key) const {
    if (get(key)) return true;
    diag_.error(self_, "missing required key " + in_quotes(key));
    return false;
}

bool MapView::required_text(std::string_view key, std::string& out) const {
    if (!require(key) || !string(key, out)) return false;
    if (!out.empty()) return true;
    error(key, "must not be empty");
    return false;
}

void MapView::collect(std::initializer_list<std::string_view> known) {
    for_each_entry(self_, [&](const MapEntry& entry) {
        const std::string* name = entry.key_name(diag_, self_.path, "a key name");
        if (!name) return;
        if (std::find(known.begin(), known.end(), *name) == known.end()) {
            diag_.error(entry.key_at, self_.path, "unknown key " + in_quotes(*name));
        } else if (get(*name)) {
            diag_.error(entry.key_at, self_.path, "duplicate key " + in_quotes(*name));
        } else {
            // The root map has no path: its keys are their own paths.
            const std::string path = self_.path.empty() ? *name : self_.path + "." + *name;
            fields_.emplace_back(*name, entry.value_field(path));
        }
    });
}

}  // namespace turnout::config::detail
