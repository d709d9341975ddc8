#include "config/diagnostics.hpp"

#include <algorithm>
#include <utility>

#include "config/values.hpp"

namespace turnout::config::detail {
Position position_of(const YAML::Mark& mark) {
    if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
    return {mark.line + 1, mark.column + 1};
}

Position value_position(const YAML::Node& value, Position key_at) {
    return value.IsNull() ? key_at : position_of(value.Mark());
}

void Diagnostics::error(Position at, std::string_view path, std::string_view message) {
    errors_.push_back(make(at, path, message));
}

void Diagnostics::warning(Position at, std::string_view path, std::string_view message) {
    warnings_.push_back(make(at, path, message));
}

LoadResult Diagnostics::finish(std::shared_ptr<Config> config) {
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

Diagnostics::Entry Diagnostics::make(Position at, std::string_view path,
                                     std::string_view message) const {
    std::string text =
        file_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": ";
    if (!path.empty()) text.append(path).append(": ");
    text.append(message);
    return {at, std::move(text)};
}

std::vector<Diagnostics::Entry> Diagnostics::sorted(std::vector<Entry> entries) {
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return std::pair(a.at.line, a.at.column) < std::pair(b.at.line, b.at.column);
    });
    return entries;
}

std::string expected_got(std::string_view what, const YAML::Node& node) {
    return "expected " + std::string(what) + ", got " + describe(node);
}

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

}  // namespace turnout::config::detail
