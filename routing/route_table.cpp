#include "routing/route_table.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace turnout::routing {

bool glob_match(std::string_view pattern, std::string_view text) {
    // Greedy matching with one backtrack point (the last `*`): linear in practice and
    // never exponential, unlike the naive recursive matcher.
    constexpr auto npos = std::string_view::npos;
    std::size_t p = 0;
    std::size_t t = 0;
    std::size_t star = npos;
    std::size_t star_text = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            star_text = t;
        } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (star != npos) {
            p = star + 1;
            t = ++star_text;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

bool is_glob(std::string_view pattern) {
    return pattern.find_first_of("*?") != std::string_view::npos;
}

const RouteConfig* find_route(const Config& config, std::string_view model) {
    for (const auto& route : config.routes) {
        if (route.name == model) return &route;
        if (route.match.model.empty() || glob_match(route.match.model, model)) return &route;
    }
    return nullptr;
}

std::vector<std::string> listed_model_names(const Config& config) {
    std::vector<std::string> names;
    auto add = [&names](const std::string& name) {
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    };
    for (const auto& route : config.routes) {
        add(route.name);
        if (!route.match.model.empty() && !is_glob(route.match.model)) add(route.match.model);
    }
    return names;
}

const TargetConfig& serving_target(const RouteConfig& route) {
    if (route.primary) return *route.primary;
    if (!route.targets.empty()) return route.targets.front();
    std::fprintf(stderr, "turnout: route '%s' has neither primary nor targets\n",
                 route.name.c_str());
    std::abort();
}

}  // namespace turnout::routing
