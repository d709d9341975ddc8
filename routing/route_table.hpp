#pragma once
/// The routing decision (CONTRACT.md "Model names", "Failover"; issue 3 "routing/"): a route table
/// compiled once per config, which turns the facts of one request and the current route states
/// into a Decision value. Plain C++: no I/O, no clock, no locks.

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace turnout::routing {

/// Shell-style glob: `*` matches any run of characters (also none), `?` exactly one.
/// Case-sensitive; there are no character classes or escapes. A pattern without
/// wildcards is an exact comparison.
bool glob_match(std::string_view pattern, std::string_view text);

/// True when `pattern` contains `*` or `?`.
bool is_glob(std::string_view pattern);

/// Request headers as received: names in any case, in arrival order, repeats allowed.
using HeaderList = std::vector<std::pair<std::string_view, std::string_view>>;

/// What routing needs to know about one request. Views only: the caller keeps the request
/// alive for the duration of RouteTable::decide (the Decision holds no view into it).
struct RequestFacts {
    std::string_view model;               ///< the client's `model`
    std::string_view request_id;          ///< x-request-id, the client's or one the gateway made up
    bool request_id_from_client = false;  ///< the client sent `request_id` itself
    std::string_view key_name;  ///< the authenticated client key's name; empty = none / no keys
    const HeaderList* headers = nullptr;  ///< null = no headers
};

/// Which side of a route serves live traffic, as decided by the shadow controller.
struct RouteServing {
    /// Share of live requests served by the candidate: 0 = the primary serves all, 1 = the
    /// candidate serves all, 0.3 = a ramp step. Values outside [0, 1] are clamped, NaN is 0.
    double candidate_share = 0.0;
};

/// Route name -> RouteServing, an input to RouteTable::decide. A plain value: the shadow
/// controller builds a new one on each change and publishes it as an immutable snapshot
/// (e.g. `std::atomic<std::shared_ptr<const RouteStates>>`). Routes absent here get the default
/// RouteServing (the primary serves), so a new route or a fresh start needs no entry.
class RouteStates {
  public:
    RouteStates() = default;
    RouteStates(std::initializer_list<std::pair<const std::string, RouteServing>> states)
        : states_(states) {}

    void set(std::string route, RouteServing serving) { states_[std::move(route)] = serving; }

    /// The route's entry, or RouteServing{} when there is none.
    RouteServing get(std::string_view route) const {
        const auto it = states_.find(route);
        return it == states_.end() ? RouteServing{} : it->second;
    }

    bool empty() const { return states_.empty(); }

  private:
    std::map<std::string, RouteServing, std::less<>> states_;
};

/// The outcome of routing one request: a value the proxy acts on without looking at the config.
///
/// `route` points into the Config the RouteTable holds: it lives as long as that table (hold the
/// table's shared_ptr for the whole request, so a reload never pulls it away). Through it the
/// proxy and the shadow code read `retries`, `timeout`, `shadow`, `judge`, `promotion` and
/// `candidate`.
///
/// Fallbacks: normally the route's `fallbacks`, in order. When the candidate serves
/// (`serving_candidate`), the primary-side target (the route's `primary`, or the weighted pick
/// of `targets`) is put first, so a failing candidate falls back to the model that served before
/// the flip, then to the configured fallbacks. A fallback identical to `target` or to an earlier
/// fallback (same provider, model, headers and body) is dropped: it would only repeat an attempt
/// that just failed, and `retries` is the knob for repeats.
struct Decision {
    const config::RouteConfig* route = nullptr;
    config::TargetConfig target;                  ///< the first upstream to try
    std::vector<config::TargetConfig> fallbacks;  ///< then these, in order
    bool serving_candidate = false;               ///< `target` is the route's candidate
};

/// The routes of one Config, compiled once (lower-cased header names, cumulative weights,
/// salts) and shared read-only. Immutable after construction: `decide` may run on any number
/// of threads at once. Keeps its Config alive.
class RouteTable {
  public:
    /// Throws std::invalid_argument for a null config, a route with neither `primary` nor
    /// `targets`, or `targets` whose weights sum to 0 (a validated config has none of these).
    explicit RouteTable(std::shared_ptr<const config::Config> config);

    /// The first route, in config order, that matches; nullptr when none does (404). A route
    /// matches when all of these hold:
    /// - model: its `name` equals `facts.model`, or `match.model` is empty, or `match.model`
    ///   matches it (exactly, or as a glob);
    /// - headers: every `match.headers` entry has a request header of that name (compared
    ///   case-insensitively) whose value matches the entry's glob; with repeated headers, any
    ///   one occurrence may match;
    /// - keys: `match.keys` is empty, or contains `facts.key_name`.
    const config::RouteConfig* match(const RequestFacts& facts) const;

    /// Routes the request: std::nullopt when no route matches (404), else the Decision.
    ///
    /// Weighted `targets` are picked in proportion to their weights: stably per request id
    /// when the client sent the id (a retry lands on the same target), otherwise from a
    /// thread-local PRNG. With a candidate and a share s in `states`, the candidate serves a
    /// share s of requests, stably per request id (any non-empty id; the PRNG when empty),
    /// and an id served by the candidate at one ramp step still is at every higher step.
    std::optional<Decision> decide(const RequestFacts& facts, const RouteStates& states) const;

    /// GET /v1/models: every route name and every exact (non-glob) `match.model`, without
    /// duplicates, in config order.
    const std::vector<std::string>& model_names() const { return model_names_; }

    const config::Config& config() const { return *config_; }
    const std::shared_ptr<const config::Config>& shared_config() const { return config_; }

  private:
    struct CompiledRoute {
        const config::RouteConfig* config = nullptr;
        /// (lower-cased name, value glob) of `match.headers`.
        std::vector<std::pair<std::string, std::string>> headers;
        std::vector<std::uint64_t> cumulative_weights;  ///< of `targets`; empty with `primary`
        std::string weight_salt;                        ///< "weight:" + name
        std::string serve_salt;                         ///< "serve:" + name
    };

    static CompiledRoute compile(const config::RouteConfig& route);
    static bool matches(const CompiledRoute& route, const RequestFacts& facts);
    static const config::TargetConfig& primary_side(const CompiledRoute& route,
                                                    const RequestFacts& facts);
    static bool candidate_serves(const CompiledRoute& route, const RequestFacts& facts,
                                 const RouteStates& states);

    std::shared_ptr<const config::Config> config_;
    std::vector<CompiledRoute> routes_;
    std::vector<std::string> model_names_;
};

// The functions below predate RouteTable and look at `name` and `match.model` only. They stay
// until the gateway has switched to RouteTable.

/// The first route, in file order, whose `name` equals `model`, whose `match.model`
/// matches it (exactly or as a glob), or whose `match.model` is empty (matches any model).
/// Returns nullptr when none does (the gateway answers 404). The pointer lives as long
/// as `config`. Ignores `match.headers` and `match.keys`: use RouteTable::decide.
const config::RouteConfig* find_route(const config::Config& config, std::string_view model);

/// The names clients may ask for (GET /v1/models): every route name and every
/// non-glob `match.model`, without duplicates, in config order.
std::vector<std::string> listed_model_names(const config::Config& config);

/// The target a route serves by default: `primary`, or the first of `targets` when the
/// route splits by weight. A validated route always has one; a route with neither is a
/// programming error and aborts with a message.
const config::TargetConfig& serving_target(const config::RouteConfig& route);

}  // namespace turnout::routing
