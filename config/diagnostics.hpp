#pragma once
/// Internal to the loader (loader.hpp is the API): where a value is, and the collector that
/// formats every problem as `FILE:LINE:COL: path: message` and returns them in file order.

#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/loader.hpp"

namespace turnout::config::detail {

/// 1-based line and column in the config file.
struct Position {
    int line = 1;
    int column = 1;
};

/// yaml-cpp marks are 0-based, and a node built without source text has a null mark.
Position position_of(const YAML::Mark& mark);

/// Where `value` is reported: at the value itself, or at `key_at` when it is null (`key:` with
/// nothing after it has no position of its own).
Position value_position(const YAML::Node& value, Position key_at);

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

/// Collects every problem with its position; they come out sorted in file order, because
/// sections are read in dependency order (providers before routes), not file order.
class Diagnostics {
  public:
    explicit Diagnostics(std::string file) : file_(std::move(file)) {}

    void error(Position at, std::string_view path, std::string_view message);
    void error(const Field& f, std::string_view message) { error(f.at, f.path, message); }
    void warning(Position at, std::string_view path, std::string_view message);
    void warning(const Field& f, std::string_view message) { warning(f.at, f.path, message); }

    /// The result: `config` only when no error was reported.
    LoadResult finish(std::shared_ptr<Config> config);

  private:
    struct Entry {
        Position at;
        std::string text;
    };

    Entry make(Position at, std::string_view path, std::string_view message) const;
    static std::vector<Entry> sorted(std::vector<Entry> entries);

    std::string file_;
    std::vector<Entry> errors_;
    std::vector<Entry> warnings_;
};

/// "a map", "a list", "nothing" or the quoted scalar, for "expected X, got Y" messages.
std::string describe(const YAML::Node& node);
/// "expected `what`, got " and what `node` is.
std::string expected_got(std::string_view what, const YAML::Node& node);

}  // namespace turnout::config::detail
