#pragma once
/// `turnout explain` (CONTRACT.md "Command line"): what a route's promotion settings mean, as
/// the chance of a flip and of a sequential rollback within a day, a week and a month at a range
/// of true pass rates, and the expected verdicts and time to a flip at 0.95 and 0.97.
///
/// Computed with the controller's own class: seeded runs of shadow::Controller fed verdicts at
/// the route's verdict rate on a fake clock (so window, min_samples, hold and the sequential
/// tests all apply), each up to a cap of verdicts. A horizon past the cap gets the proven bound
/// where there is one (a candidate at or below rollback_threshold for flips, at or above
/// threshold for rollbacks: Ville's inequality on each run's running test plus the budget the
/// later tests may still spend, averaged over the runs), else the share already reached by the
/// cap (a lower bound). Plain C++, no I/O: the caller prints render()'s text.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace turnout::shadow {

/// Live requests per hour `turnout explain` assumes without --requests-per-hour: 10 a minute,
/// which at the default sample_rate 0.1 is one verdict a minute.
inline constexpr double kDefaultRequestsPerHour = 600.0;

struct ExplainOptions {
    double requests_per_hour = kDefaultRequestsPerHour;
    std::uint32_t runs = 200;           ///< simulated routes per true pass rate and direction
    std::uint64_t verdict_cap = 6'000;  ///< verdicts simulated per run at most
    std::uint64_t seed = 20261207;
    /// True pass rates of the table; the route's threshold and rollback_threshold are added
    /// when they lie in [0.80, 0.99] and are not listed.
    std::vector<double> pass_rates = {0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.97, 0.99};
    /// Pass rates whose expected verdicts and time to a flip are shown.
    std::vector<double> speed_rates = {0.95, 0.97};
};

/// One chance within one horizon.
struct Chance {
    enum class Kind {
        simulated,  ///< the share of runs, the horizon within the cap
        at_most,    ///< past the cap: the proven bound
        at_least,   ///< past the cap, no bound: the share reached by the cap
        never,      ///< no verdicts at this rate: nothing can happen
    };
    Kind kind = Kind::simulated;
    double value = 0.0;

    bool operator==(const Chance&) const = default;
};

inline constexpr std::size_t kHorizons = 3;  ///< a day, a week, a month (30 days)
inline constexpr std::array<double, kHorizons> kHorizonHours = {24.0, 24.0 * 7, 24.0 * 30};

struct ExplainRow {
    double pass_rate = 0.0;
    std::array<Chance, kHorizons> flip;
    std::array<Chance, kHorizons> rollback;
};

/// Expected verdicts (and time) to a flip from a fresh start at one true pass rate.
struct FlipSpeed {
    double pass_rate = 0.0;
    double flipped = 0.0;        ///< share of runs that flipped within the cap
    double mean_verdicts = 0.0;  ///< over the runs that flipped
    double mean_hours = 0.0;
};

struct Explanation {
    std::string route;
    config::PromotionConfig promotion;
    double sample_rate = 0.0;
    ExplainOptions options;
    double flip_verdicts_per_hour = 0.0;      ///< sample_rate x requests per hour
    double rollback_verdicts_per_hour = 0.0;  ///< shadow_after_promotion x requests per hour
    std::uint64_t flip_simulated = 0;         ///< verdicts per flip run: min(cap, a month's)
    std::uint64_t rollback_simulated = 0;
    /// The controller's own counts (hold 0s, min_samples 0), 0 when never within 100,000.
    std::uint64_t flip_accept_passes = 0;      ///< straight passes: the first flip test accepts
    std::uint64_t flip_reject_fails = 0;       ///< straight fails: it rejects
    std::uint64_t rollback_fails = 0;          ///< straight fails after a flip: rolled back
    std::uint64_t rollback_reject_passes = 0;  ///< straight passes: the rollback test rejects
    std::vector<ExplainRow> rows;
    std::vector<FlipSpeed> speeds;
};

/// Runs the simulation for `route` (in mode auto whatever its mode; render() says so).
Explanation explain(const config::RouteConfig& route, const ExplainOptions& options = {});

/// The table and its notes as text, for `turnout explain`.
std::string render(const Explanation& explanation);

/// "4.2%", "<= 0.31%", ">= 99%", "never": how render() shows one chance.
std::string to_string(const Chance& chance);

}  // namespace turnout::shadow
