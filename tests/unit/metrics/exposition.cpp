#include "tests/unit/metrics/exposition.hpp"

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string_view>

namespace turnout::metrics::testing {
namespace {

bool includes(const LabelMap& labels, const LabelMap& subset) {
    for (const auto& [name, value] : subset) {
        const auto it = labels.find(name);
        if (it == labels.end() || it->second != value) return false;
    }
    return true;
}

bool parse_value(std::string_view text, double& out) {
    if (text == "+Inf") {
        out = INFINITY;
        return true;
    }
    if (text == "-Inf") {
        out = -INFINITY;
        return true;
    }
    const std::string copy(text);
    char* end = nullptr;
    out = std::strtod(copy.c_str(), &end);  // strtod also reads "NaN" and "Nan"
    return end != copy.c_str() && *end == '\0';
}

/// `{a="x",b="y\"z"}` starting at text[pos] == '{'; leaves pos after the '}'.
bool parse_labels(std::string_view text, std::size_t& pos, LabelMap& labels) {
    ++pos;
    while (pos < text.size() && text[pos] != '}') {
        const std::size_t eq = text.find('=', pos);
        if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"') {
            return false;
        }
        const std::string name(text.substr(pos, eq - pos));
        std::string value;
        pos = eq + 2;
        while (pos < text.size() && text[pos] != '"') {
            if (text[pos] == '\\' && pos + 1 < text.size()) {
                ++pos;
                value += text[pos] == 'n' ? '\n' : text[pos];
            } else {
                value += text[pos];
            }
            ++pos;
        }
        if (pos >= text.size()) return false;
        ++pos;  // closing quote
        if (pos < text.size() && text[pos] == ',') ++pos;
        labels[name] = value;
    }
    if (pos >= text.size()) return false;
    ++pos;
    return true;
}

}  // namespace

std::optional<double> Exposition::value(const std::string& name, const LabelMap& labels) const {
    for (const Sample& sample : samples) {
        if (sample.name == name && sample.labels == labels) return sample.value;
    }
    return std::nullopt;
}

double Exposition::sum(const std::string& name, const LabelMap& subset) const {
    double total = 0;
    for (const Sample& sample : samples) {
        if (sample.name == name && includes(sample.labels, subset)) total += sample.value;
    }
    return total;
}

std::size_t Exposition::count(const std::string& name, const LabelMap& subset) const {
    std::size_t total = 0;
    for (const Sample& sample : samples) {
        if (sample.name == name && includes(sample.labels, subset)) ++total;
    }
    return total;
}

std::string family_of(const std::string& name, const std::map<std::string, Family>& families) {
    for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (!name.ends_with(suffix)) continue;
        const std::string base = name.substr(0, name.size() - suffix.size());
        const auto it = families.find(base);
        if (it == families.end()) continue;
        if (it->second.type == "histogram" ||
            (it->second.type == "summary" && suffix != "_bucket")) {
            return base;
        }
    }
    return name;
}

Exposition parse_exposition(const std::string& text) {
    Exposition out;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty()) continue;
        std::istringstream words(line);
        std::string hash, keyword, name;
        if (line.starts_with("# ")) {
            words >> hash >> keyword >> name;
            std::string rest;
            std::getline(words, rest);
            if (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
            if (keyword == "TYPE") out.families[name].type = rest;
            if (keyword == "HELP") out.families[name].help = rest;
            continue;
        }
        Sample sample;
        std::size_t pos = line.find_first_of("{ ");
        if (pos == std::string::npos) {
            out.errors.push_back(line);
            continue;
        }
        sample.name = line.substr(0, pos);
        if (line[pos] == '{' && !parse_labels(line, pos, sample.labels)) {
            out.errors.push_back(line);
            continue;
        }
        while (pos < line.size() && line[pos] == ' ') ++pos;
        std::string_view value(line);
        value = value.substr(pos);
        if (const std::size_t space = value.find(' '); space != std::string_view::npos) {
            value = value.substr(0, space);  // a timestamp follows
        }
        if (!parse_value(value, sample.value)) {
            out.errors.push_back(line);
            continue;
        }
        out.samples.push_back(std::move(sample));
    }
    for (const Sample& sample : out.samples) {
        const std::string family = family_of(sample.name, out.families);
        Family& f = out.families[family];
        ++f.samples;
        for (const auto& [label, value] : sample.labels) {
            if (label != "le" && label != "quantile") f.label_names.insert(label);
        }
    }
    return out;
}

}  // namespace turnout::metrics::testing
