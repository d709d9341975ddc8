#pragma once
/// A reader for the Prometheus text format as `Metrics::render()` writes it, so tests assert on
/// parsed samples instead of substrings.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace turnout::metrics::testing {

using LabelMap = std::map<std::string, std::string>;

struct Sample {
    std::string name;  ///< as written, e.g. `turnout_judge_score_bucket`
    LabelMap labels;
    double value = 0;
};

struct Family {
    std::string type;  ///< counter | gauge | histogram | summary | untyped
    std::string help;
    std::set<std::string> label_names;  ///< over all its samples, `le` excluded
    std::size_t samples = 0;
};

struct Exposition {
    std::vector<Sample> samples;
    std::map<std::string, Family> families;  ///< by family name (no _bucket/_sum/_count)
    std::vector<std::string> errors;         ///< lines that could not be read

    /// The value of the one sample named `name` whose labels are exactly `labels`.
    std::optional<double> value(const std::string& name, const LabelMap& labels) const;
    /// The sum of every sample named `name` whose labels include `subset`.
    double sum(const std::string& name, const LabelMap& subset = {}) const;
    /// How many samples named `name` include `subset`.
    std::size_t count(const std::string& name, const LabelMap& subset = {}) const;
};

Exposition parse_exposition(const std::string& text);

/// The family a sample or a PromQL metric name belongs to: strips `_bucket`, `_sum`, `_count`
/// when what remains is a histogram (or summary) in `families`.
std::string family_of(const std::string& name, const std::map<std::string, Family>& families);

}  // namespace turnout::metrics::testing
