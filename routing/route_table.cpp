#include "routing/route_table.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>

#include "routing/sampling.hpp"

namespace turnout::routing {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

/// `lowered` is already lower case; `name` is as received.
bool equals_lower(std::string_view lowered, std::string_view name) {
    return lowered.size() == name.size() &&
           std::equal(lowered.begin(), lowered.end(), name.begin(),
                      [](char a, char b) { return a == lower(b); });
}

std::uint64_t random_seed() {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

/// A uniform value in [0, 1) from a per-thread splitmix64: no lock, no shared cache line, and
/// far cheaper than a std::mt19937_64 per call site.
double random_unit() {
    thread_local std::uint64_t state = random_seed();
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
}

bool has_key(const std::vector<std::string>& keys, std::string_view name) {
    return std::find(keys.begin(), keys.end(), name) != keys.end();
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// RouteTable

RouteTable::RouteTable(std::shared_ptr<const config::Config> config) : config_(std::move(config)) {
    if (!config_) throw std::invalid_argument("RouteTable needs a config");
    routes_.reserve(config_->routes.size());
    for (const auto& route : config_->routes) routes_.push_back(compile(route));
    model_names_ = listed_model_names(*config_);
}

RouteTable::CompiledRoute RouteTable::compile(const config::RouteConfig& route) {
    CompiledRoute compiled;
    compiled.config = &route;
    if (!route.primary && route.targets.empty()) {
        throw std::invalid_argument("route '" + route.name + "' has neither primary nor targets");
    }
    // The loader lower-cases match header names already; a config built in code may not have.
    for (const auto& [name, value] : route.match.headers) {
        compiled.headers.emplace_back(to_lower(name), value);
    }
    if (!route.primary) {
        std::uint64_t total = 0;
        for (const auto& target : route.targets) {
            total += target.weight;
            compiled.cumulative_weights.push_back(total);
        }
        if (total == 0) {
            throw std::invalid_argument("route '" + route.name + "': target weights sum to 0");
        }
    }
    compiled.weight_salt = "weight:" + route.name;
    compiled.serve_salt = "serve:" + route.name;
    return compiled;
}

bool RouteTable::matches(const CompiledRoute& route, const RequestFacts& facts) {
    const config::RouteConfig& config = *route.config;
    if (!config.match.keys.empty() && !has_key(config.match.keys, facts.key_name)) return false;
    // A route is always reachable by its own name, even when `match.model` says otherwise.
    if (config.name != facts.model && !config.match.model.empty() &&
        !glob_match(config.match.model, facts.model)) {
        return false;
    }
    for (const auto& wanted : route.headers) {
        if (facts.headers == nullptr) return false;
        const bool found = std::any_of(facts.headers->begin(), facts.headers->end(),
                                       [&wanted](const auto& header) {
                                           return equals_lower(wanted.first, header.first) &&
                                                  glob_match(wanted.second, header.second);
                                       });
        if (!found) return false;
    }
    return true;
}

const config::RouteConfig* RouteTable::match(const RequestFacts& facts) const {
    for (const auto& route : routes_) {
        if (matches(route, facts)) return route.config;
    }
    return nullptr;
}

const config::TargetConfig& RouteTable::primary_side(const CompiledRoute& route,
                                                     const RequestFacts& facts) {
    const config::RouteConfig& config = *route.config;
    if (config.primary) return *config.primary;
    if (config.targets.size() == 1) return config.targets.front();
    // A client retrying with its own x-request-id lands on the same target; ids the gateway
    // made up are fresh per request, so hashing them would buy nothing over the PRNG.
    const double unit = facts.request_id_from_client
                            ? stable_unit(facts.request_id, route.weight_salt)
                            : random_unit();
    const std::uint64_t total = route.cumulative_weights.back();
    const auto draw =
        std::min(static_cast<std::uint64_t>(unit * static_cast<double>(total)), total - 1);
    const auto it =
        std::upper_bound(route.cumulative_weights.begin(), route.cumulative_weights.end(), draw);
    return config.targets[static_cast<std::size_t>(it - route.cumulative_weights.begin())];
}

bool RouteTable::candidate_serves(const CompiledRoute& route, const RequestFacts& facts,
                                  const RouteStates& states) {
    if (!route.config->candidate) return false;
    const double share = states.get(route.config->name).candidate_share;
    if (!(share > 0.0)) return false;  // also NaN
    if (share >= 1.0) return true;
    // Stable per id, so one conversation turn retried by the client is not split across models
    // and replicas agree; `sampled` also keeps an id on the candidate as the ramp share grows.
    if (!facts.request_id.empty()) return sampled(facts.request_id, share, route.serve_salt);
    return random_unit() < share;
}

std::optional<Decision> RouteTable::decide(const RequestFacts& facts,
                                           const RouteStates& states) const {
    const auto it = std::find_if(routes_.begin(), routes_.end(),
                                 [&](const CompiledRoute& r) { return matches(r, facts); });
    if (it == routes_.end()) return std::nullopt;
    const config::RouteConfig& route = *it->config;
    Decision decision;
    decision.route = &route;
    const config::TargetConfig& primary = primary_side(*it, facts);
    std::vector<const config::TargetConfig*> order;
    order.reserve(route.fallbacks.size() + 1);
    if (candidate_serves(*it, facts, states)) {
        decision.serving_candidate = true;
        decision.target = *route.candidate;
        order.push_back(&primary);
    } else {
        decision.target = primary;
    }
    for (const auto& fallback : route.fallbacks) order.push_back(&fallback);
    decision.fallbacks.reserve(order.size());
    for (const config::TargetConfig* fallback : order) {
        if (fallback->same_upstream(decision.target)) continue;
        const bool repeated = std::any_of(
            decision.fallbacks.begin(), decision.fallbacks.end(),
            [&](const config::TargetConfig& kept) { return kept.same_upstream(*fallback); });
        if (!repeated) decision.fallbacks.push_back(*fallback);
    }
    return decision;
}

// ---------------------------------------------------------------------------------------------
// The model-only lookups the gateway used before RouteTable

const config::RouteConfig* find_route(const config::Config& config, std::string_view model) {
    for (const auto& route : config.routes) {
        if (route.name == model) return &route;
        if (route.match.model.empty() || glob_match(route.match.model, model)) return &route;
    }
    return nullptr;
}

std::vector<std::string> listed_model_names(const config::Config& config) {
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

const config::TargetConfig& serving_target(const config::RouteConfig& route) {
    if (route.primary) return *route.primary;
    if (!route.targets.empty()) return route.targets.front();
    std::fprintf(stderr, "turnout: route '%s' has neither primary nor targets\n",
                 route.name.c_str());
    std::abort();
}

}  // namespace turnout::routing
