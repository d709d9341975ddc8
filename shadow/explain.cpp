#include "shadow/explain.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <utility>

#include "shadow/controller.hpp"

namespace turnout::shadow {

namespace {

using namespace std::chrono_literals;

// Any fixed instant: the controller only compares times.
const TimePoint kStart = TimePoint{} + std::chrono::seconds(1'700'000'000);

enum class Direction { flip, rollback };

/// One simulated route: the verdict (1-based) at which it flipped or rolled back, 0 if it did
/// not within the simulated verdicts; then the bound on it happening later (when valid).
struct Outcome {
    std::uint64_t at = 0;
    double later = 1.0;
};

/// Ville's inequality from where a run stands: the running test (statistic `llr`, bound
/// `accept`, the k-th) reaches its bound with probability at most exp(llr - accept); a test
/// that has just rejected is over (the next one starts at 0). The later tests may spend at most
/// budget_after(alpha, k). Valid when the true pass rate makes the test's likelihood ratio a
/// supermartingale: at or below rollback_threshold for the flip test, at or above threshold for
/// the rollback test.
double later_bound(double llr, double accept, double reject, std::uint64_t k, double alpha) {
    const double running = llr <= reject ? 0.0 : std::exp(std::min(0.0, llr - accept));
    return std::min(1.0, running + budget_after(alpha, k));
}

config::RouteConfig automatic(config::RouteConfig route) {
    route.promotion.mode = config::PromotionMode::automatic;
    return route;
}

Clock::duration spacing(double verdicts_per_hour) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(3600.0 / verdicts_per_hour));
}

std::uint64_t seed_for(std::uint64_t seed, double pass_rate, Direction direction) {
    return seed * 1'000'003 + static_cast<std::uint64_t>(std::lround(pass_rate * 10'000)) * 2 +
           (direction == Direction::rollback ? 1 : 0);
}

/// `runs` routes at `pass_rate`, each fed up to `verdicts` verdicts `verdicts_per_hour` apart:
/// from a fresh start for flips, from a manual promotion for rollbacks.
std::vector<Outcome> simulate(const config::RouteConfig& route, Direction direction,
                              double pass_rate, double verdicts_per_hour, std::uint64_t verdicts,
                              const ExplainOptions& options) {
    const double alpha = error_budget(route.promotion.confidence);
    const Clock::duration step = spacing(verdicts_per_hour);
    std::mt19937_64 rng(seed_for(options.seed, pass_rate, direction));
    std::vector<Outcome> outcomes(options.runs);
    for (Outcome& outcome : outcomes) {
        Controller c(route, "explain", kStart);
        TimePoint now = kStart;
        if (direction == Direction::rollback) c.promote(now, "explain");
        const RouteState watched = c.state();
        for (std::uint64_t i = 1; i <= verdicts; ++i) {
            now += step;
            const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
            c.record_verdict(now, u < pass_rate ? VerdictKind::pass : VerdictKind::fail);
            if (c.state() != watched) {
                outcome.at = i;
                break;
            }
        }
        if (outcome.at != 0) continue;
        const Status s = c.status();
        outcome.later =
            direction == Direction::flip
                ? later_bound(s.evidence.sprt_llr, s.sprt_accept, s.sprt_reject, s.flip_test, alpha)
                : later_bound(s.evidence.rollback_llr, s.rollback_accept, s.sprt_reject,
                              s.rollback_test, alpha);
    }
    return outcomes;
}

/// The chance within `horizon` verdicts, from runs of `simulated` verdicts each.
Chance chance_within(const std::vector<Outcome>& outcomes, std::uint64_t horizon,
                     std::uint64_t simulated, bool bounded) {
    if (outcomes.empty()) return {Chance::Kind::never, 0.0};
    const double runs = static_cast<double>(outcomes.size());
    double happened = 0.0;
    double later = 0.0;
    for (const Outcome& o : outcomes) {
        if (o.at != 0 && o.at <= horizon) {
            happened += 1.0;
        } else if (o.at == 0) {
            later += o.later;
        }
    }
    if (horizon <= simulated) return {Chance::Kind::simulated, happened / runs};
    if (bounded) return {Chance::Kind::at_most, std::min(1.0, (happened + later) / runs)};
    return {Chance::Kind::at_least, happened / runs};
}

std::array<Chance, kHorizons> chances(const std::vector<Outcome>& outcomes,
                                      double verdicts_per_hour, std::uint64_t simulated,
                                      bool bounded) {
    std::array<Chance, kHorizons> result;
    for (std::size_t h = 0; h < kHorizons; ++h) {
        if (verdicts_per_hour <= 0.0) {
            result[h] = {Chance::Kind::never, 0.0};
            continue;
        }
        const auto horizon = static_cast<std::uint64_t>(verdicts_per_hour * kHorizonHours[h]);
        result[h] = chance_within(outcomes, horizon, simulated, bounded);
    }
    return result;
}

std::uint64_t month_of(double verdicts_per_hour) {
    return static_cast<std::uint64_t>(std::max(0.0, verdicts_per_hour * kHorizonHours.back()));
}

std::vector<double> table_rates(const ExplainOptions& options,
                                const config::PromotionConfig& promotion) {
    std::vector<double> rates = options.pass_rates;
    for (const double extra : {promotion.rollback_threshold, promotion.threshold}) {
        const bool listed = std::any_of(rates.begin(), rates.end(),
                                        [&](double r) { return std::abs(r - extra) < 1e-9; });
        if (!listed && extra >= 0.80 - 1e-9 && extra <= 0.99 + 1e-9) rates.push_back(extra);
    }
    std::sort(rates.begin(), rates.end());
    return rates;
}

FlipSpeed speed_of(const std::vector<Outcome>& outcomes, double pass_rate,
                   double verdicts_per_hour) {
    FlipSpeed speed;
    speed.pass_rate = pass_rate;
    double flipped = 0.0;
    double sum = 0.0;
    for (const Outcome& o : outcomes) {
        if (o.at == 0) continue;
        flipped += 1.0;
        sum += static_cast<double>(o.at);
    }
    if (outcomes.empty() || flipped == 0.0) return speed;
    speed.flipped = flipped / static_cast<double>(outcomes.size());
    speed.mean_verdicts = sum / flipped;
    speed.mean_hours = speed.mean_verdicts / verdicts_per_hour;
    return speed;
}

/// The controller's own counts: verdicts of one kind, from a fresh test, until `done`.
template <typename Done>
std::uint64_t straight(const config::RouteConfig& route, bool promoted, VerdictKind kind,
                       Done done) {
    config::RouteConfig r = route;
    r.promotion.hold = config::Duration::zero();
    r.promotion.min_samples = 0;
    Controller c(r, "explain", kStart);
    TimePoint now = kStart;
    if (promoted) c.promote(now, "explain");
    for (std::uint64_t n = 1; n <= 100'000; ++n) {
        now += 1s;
        c.record_verdict(now, kind);
        if (done(c)) return n;
    }
    return 0;
}

}  // namespace

Explanation explain(const config::RouteConfig& original, const ExplainOptions& options) {
    const config::RouteConfig route = automatic(original);
    Explanation e;
    e.route = original.name;
    e.promotion = original.promotion;
    e.sample_rate = original.shadow.sample_rate;
    e.options = options;
    e.flip_verdicts_per_hour =
        std::max(0.0, original.shadow.sample_rate * options.requests_per_hour);
    e.rollback_verdicts_per_hour =
        std::max(0.0, original.promotion.shadow_after_promotion * options.requests_per_hour);
    e.flip_simulated = std::min(options.verdict_cap, month_of(e.flip_verdicts_per_hour));
    e.rollback_simulated = std::min(options.verdict_cap, month_of(e.rollback_verdicts_per_hour));
    e.flip_accept_passes = straight(route, false, VerdictKind::pass, [](const Controller& c) {
        return c.status().sprt_decision == SprtDecision::accepted;
    });
    e.flip_reject_fails = straight(route, false, VerdictKind::fail, [](const Controller& c) {
        return c.status().sprt_decision == SprtDecision::rejected;
    });
    e.rollback_fails = straight(route, true, VerdictKind::fail, [](const Controller& c) {
        return c.state() == RouteState::rolled_back;
    });
    e.rollback_reject_passes = straight(route, true, VerdictKind::pass, [](const Controller& c) {
        const Status s = c.status();
        return s.evidence.rollback_llr <= s.sprt_reject;
    });

    const auto run = [&](Direction direction, double pass_rate) {
        const bool flip = direction == Direction::flip;
        const double per_hour = flip ? e.flip_verdicts_per_hour : e.rollback_verdicts_per_hour;
        if (per_hour <= 0.0) return std::vector<Outcome>{};
        return simulate(route, direction, pass_rate, per_hour,
                        flip ? e.flip_simulated : e.rollback_simulated, options);
    };
    const auto& p = route.promotion;
    for (const double rate : table_rates(options, p)) {
        ExplainRow row;
        row.pass_rate = rate;
        const auto flips = run(Direction::flip, rate);
        row.flip = chances(flips, e.flip_verdicts_per_hour, e.flip_simulated,
                           rate <= p.rollback_threshold);
        const auto rollbacks = run(Direction::rollback, rate);
        row.rollback = chances(rollbacks, e.rollback_verdicts_per_hour, e.rollback_simulated,
                               rate >= p.threshold);
        e.rows.push_back(row);
        for (const double speed_rate : options.speed_rates) {
            if (std::abs(speed_rate - rate) < 1e-9) {
                e.speeds.push_back(speed_of(flips, rate, e.flip_verdicts_per_hour));
            }
        }
    }
    for (const double speed_rate : options.speed_rates) {
        const bool done = std::any_of(e.speeds.begin(), e.speeds.end(), [&](const FlipSpeed& s) {
            return std::abs(s.pass_rate - speed_rate) < 1e-9;
        });
        if (!done) {
            e.speeds.push_back(
                speed_of(run(Direction::flip, speed_rate), speed_rate, e.flip_verdicts_per_hour));
        }
    }
    return e;
}

// ---------------------------------------------------------------------------------------------
// Text

namespace {

std::string format(const char* pattern, auto... values) {
    const int n = std::snprintf(nullptr, 0, pattern, values...);
    std::string text(static_cast<std::size_t>(std::max(n, 0)) + 1, '\0');
    std::snprintf(text.data(), text.size(), pattern, values...);
    text.resize(text.size() - 1);
    return text;
}

enum class Rounding { nearest, up, down };

/// A share as a percentage; an upper bound rounds up and a lower bound down, so that the text
/// still bounds.
std::string percent(double share, Rounding rounding = Rounding::nearest) {
    const double p = 100.0 * share;
    if (p == 0.0 || p == 100.0) return format("%.0f%%", p);
    const int decimals = p < 0.1 || p > 99.9 ? 2 : 1;
    const double scale = decimals == 2 ? 100.0 : 10.0;
    // 1e-9: a share printed exactly (0.05) must not become 0.06 through its binary form.
    const double shown = rounding == Rounding::up     ? std::ceil(p * scale - 1e-9) / scale
                         : rounding == Rounding::down ? std::floor(p * scale + 1e-9) / scale
                                                      : p;
    return format(decimals == 2 ? "%.2f%%" : "%.1f%%", shown);
}

std::string duration_text(config::Duration d) {
    const auto ms = d.count();
    if (ms == 0) return "0s";
    if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1'000 == 0) return std::to_string(ms / 1'000) + "s";
    return std::to_string(ms) + "ms";
}

std::string hours_text(double hours) {
    if (hours < 1.0) return format("%.0f minutes", hours * 60.0);
    if (hours < 48.0) return format("%.1f hours", hours);
    return format("%.1f days", hours / 24.0);
}

std::string ramp_text(const std::vector<std::uint32_t>& ramp) {
    std::string text = "[";
    for (std::size_t i = 0; i < ramp.size(); ++i) {
        if (i != 0) text += ", ";
        text += std::to_string(ramp[i]);
    }
    return text + "]";
}

std::string tests_text(const Explanation& e) {
    const auto count = [](std::uint64_t n) { return static_cast<unsigned long long>(n); };
    return format(
               "  flip test:      %llu straight passes accept it from zero, %llu straight "
               "fails reject it;\n",
               count(e.flip_accept_passes), count(e.flip_reject_fails)) +
           format(
               "                  a rejection starts the next test: the k-th accepts at\n"
               "                  ln(pi^2 k^2 / (6 x %.3g)), so all together err at most "
               "%.3g\n",
               error_budget(e.promotion.confidence), error_budget(e.promotion.confidence)) +
           format(
               "  rollback test:  %llu straight fails roll back after a flip, %llu straight "
               "passes restart\n                  it (the same rule)\n",
               count(e.rollback_fails), count(e.rollback_reject_passes));
}

std::string stall_text(const config::PromotionConfig& p) {
    const config::Duration grace = p.hold > config::Duration::zero() ? p.hold : p.step;
    if (grace <= config::Duration::zero()) {
        return "verdicts stopping: never here (hold and step are both 0s)";
    }
    return "verdicts\n  stopping (none for " + duration_text(grace) +
           (p.hold > config::Duration::zero() ? ", the hold" : ", the step: hold is 0s") +
           ", while traffic that should have given 5 mirrors went on)";
}

}  // namespace

std::string to_string(const Chance& chance) {
    switch (chance.kind) {
        case Chance::Kind::simulated:
            return percent(chance.value);
        case Chance::Kind::at_most:
            return "<= " + percent(chance.value, Rounding::up);
        case Chance::Kind::at_least:
            // Every run got there within the cap: later horizons cannot show less.
            return chance.value >= 1.0 ? percent(1.0)
                                       : ">= " + percent(chance.value, Rounding::down);
        case Chance::Kind::never:
            return "never";
    }
    return "?";
}

std::string render(const Explanation& e) {
    const auto& p = e.promotion;
    std::string out = "route " + e.route + ":\n  " + guarantee(p) + "\n";
    out += format(
        "  settings:       mode %s, window %u, min_samples %u, threshold %g,\n"
        "                  rollback_threshold %g, confidence %g, ",
        std::string(to_string(p.mode)).c_str(), p.window, p.min_samples, p.threshold,
        p.rollback_threshold, p.confidence);
    out += "hold " + duration_text(p.hold) + ", ramp " + ramp_text(p.ramp) + ",\n" +
           "                  step " + duration_text(p.step) + ", cooldown " +
           duration_text(p.cooldown) + "\n";
    if (p.mode != config::PromotionMode::automatic) {
        out += "  (mode " + std::string(to_string(p.mode)) +
               " never flips or rolls back by itself: the numbers are those of mode auto)\n";
    }
    out += format(
        "  traffic:        %g live requests an hour (--requests-per-hour): %g verdicts an "
        "hour\n                  while shadowing (sample_rate %g), %g once promoted "
        "(shadow_after_promotion %g)\n",
        e.options.requests_per_hour, e.flip_verdicts_per_hour, e.sample_rate,
        e.rollback_verdicts_per_hour, p.shadow_after_promotion);
    out += tests_text(e);

    out +=
        "\n                 |          flip within          |        rollback within\n"
        "  true pass rate |     a day    a week   a month |     a day    a week   a month\n";
    for (const ExplainRow& row : e.rows) {
        out += format("  %14.2f |", row.pass_rate);
        for (const Chance& c : row.flip) out += format(" %9s", to_string(c).c_str());
        out += " |";
        for (const Chance& c : row.rollback) out += format(" %9s", to_string(c).c_str());
        out += "\n";
    }
    out += "\n";
    for (const FlipSpeed& s : e.speeds) {
        if (s.flipped == 0.0) {
            out += format("  at a true pass rate of %.2f: no flip within %llu verdicts\n",
                          s.pass_rate, static_cast<unsigned long long>(e.flip_simulated));
            continue;
        }
        out += format("  at a true pass rate of %.2f: a flip after %.0f verdicts on average, %s",
                      s.pass_rate, s.mean_verdicts, hours_text(s.mean_hours).c_str());
        out += s.flipped < 1.0 ? format(" (%s of runs flipped within %llu verdicts)\n",
                                        percent(s.flipped).c_str(),
                                        static_cast<unsigned long long>(e.flip_simulated))
                               : "\n";
    }
    out += format(
        "\n  %u seeded runs of the controller per pass rate and direction (seed %llu), up "
        "to\n  %llu verdicts each for flips and %llu for rollbacks (from a flip). A horizon past "
        "that\n  shows \"<=\", the proven bound (Ville's inequality on each run's running test "
        "plus the budget\n  left to later tests), or \">=\", the share reached by then where "
        "no bound holds. A month is\n  30 days.\n",
        e.options.runs, static_cast<unsigned long long>(e.options.seed),
        static_cast<unsigned long long>(e.flip_simulated),
        static_cast<unsigned long long>(e.rollback_simulated));
    out +=
        "  Rollbacks here are the sequential test's; the gateway also rolls back on the "
        "candidate's\n  live error rate (above 2% of its last 200 requests, from 50 on) and "
        "on " +
        stall_text(p) + ".\n";
    return out;
}

}  // namespace turnout::shadow
