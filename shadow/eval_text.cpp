#include "shadow/eval_text.hpp"

#include <array>
#include <cmath>
#include <cstdio>

#include "shadow/text_util.hpp"

namespace turnout::shadow::detail {

base::JsonInputResult parse_eval_json(std::string_view text, rapidjson::Document& document) {
    constexpr base::JsonInputOptions kOptions{.max_depth = 64, .full_precision = true};
    return base::parse_json_input(text, document, kOptions);
}

std::string fixed(double value, int decimals) {
    if (!std::isfinite(value)) return value > 0 ? "inf" : (value < 0 ? "-inf" : "nan");
    std::array<char, 64> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "%.*f", decimals, value);
    return buffer.data();
}

std::string percent(double share) { return fixed(share * 100.0, 1) + "%"; }
std::string usd(double value) { return (value < 0 ? "-$" : "$") + fixed(std::abs(value), 4); }
std::string millis(double value) { return fixed(value, 1) + " ms"; }

std::string number_text(double value) {
    return value == std::floor(value) && std::abs(value) < 1e15 ? fixed(value, 0) : fixed(value, 1);
}

std::string score_text(const std::optional<double>& score) {
    return score ? number_text(*score) : std::string("-");
}

std::string one_line(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
    return out;
}

std::string markdown_cell(std::string_view text, std::size_t limit) {
    std::string out;
    for (const char c : shorten(one_line(text), limit)) {
        if (c == '|') out += '\\';
        out.push_back(c);
    }
    return out;
}

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const char* entity = c == '&'    ? "&amp;"
                             : c == '<'  ? "&lt;"
                             : c == '>'  ? "&gt;"
                             : c == '"'  ? "&quot;"
                             : c == '\'' ? "&apos;"
                                         : nullptr;
        if (entity != nullptr) {
            out += entity;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

double finite(double value) { return std::isfinite(value) ? value : 0.0; }

}  // namespace turnout::shadow::detail
