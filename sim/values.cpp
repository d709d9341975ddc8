#include "sim/values.hpp"

#include <cmath>

namespace turnout::sim {

bool parse_bounded(std::string_view text, std::int64_t low, std::int64_t high, std::int64_t& out) {
    std::int64_t value = 0;
    if (!parse_number(text, value) || value < low || value > high) {
        return false;
    }
    out = value;
    return true;
}

bool parse_rate(std::string_view text, double& out) {
    double value = 0;
    if (!parse_number(text, value) || !std::isfinite(value) || (value != 0 && value < 0.001) ||
        value < 0) {
        return false;
    }
    out = value;
    return true;
}

bool parse_share(std::string_view text, double& out) {
    double value = 0;
    if (!parse_number(text, value) || !(value >= 0 && value <= 1)) {
        return false;
    }
    out = value;
    return true;
}

bool parse_flag(std::string_view text, bool& out) {
    if (text == "1" || text == "true" || text == "yes") {
        out = true;
        return true;
    }
    if (text == "0" || text == "false" || text == "no") {
        out = false;
        return true;
    }
    return false;
}

bool parse_status(std::string_view text, int& out) {
    std::int64_t value = 0;
    if (!parse_bounded(text, 200, 599, value)) {
        return false;
    }
    out = value >= 300 ? static_cast<int>(value) : 0;
    return true;
}

void split_words(std::string_view text, std::vector<std::string>& out) {
    out.clear();
    std::size_t start = text.find_first_not_of(kWhitespace);
    while (start != std::string_view::npos) {
        const std::size_t end = text.find_first_of(kWhitespace, start);
        out.emplace_back(text.substr(start, end - start));
        start = end == std::string_view::npos ? end : text.find_first_not_of(kWhitespace, end);
    }
}

}  // namespace turnout::sim
