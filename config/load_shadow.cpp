// A route's evaluation: `shadow:` (mirroring), `judge:` (grading) and `promotion:` (what the
// verdicts do to the traffic).
#include <string>

#include "config/sections.hpp"
#include "config/upstream_extras.hpp"
#include "config/values.hpp"

namespace turnout::config::detail {
namespace {

std::string as_text(std::uint32_t value) { return std::to_string(value); }
std::string as_text(double value) { return format_number(value); }

/// Two values read fine that must be in order: `lower` below `upper` (or equal when
/// `may_equal`). Reported at `lower` when it is written, else at `upper` (the other one kept
/// its default).
template <typename T>
void check_order(const MapView& m, std::string_view lower_key, T lower, std::string_view upper_key,
                 T upper, bool may_equal) {
    if (may_equal ? lower <= upper : lower < upper) return;
    m.error(m.get(lower_key) ? lower_key : upper_key,
            std::string(lower_key) + " (" + as_text(lower) +
                (may_equal ? ") must not exceed " : ") must be below ") + std::string(upper_key) +
                " (" + as_text(upper) + ")");
}

void load_ramp(LoadContext& ctx, const Field& f, std::vector<std::uint32_t>& ramp) {
    std::vector<std::uint32_t> steps;
    Position last_at = f.at;
    std::string last_path = f.path;
    bool items_ok = true;
    const bool list_ok = for_each_item(ctx.diag, f, [&](const Field& item) {
        std::uint32_t step = 0;
        if (!read_count(ctx.diag, item, step, 1, 100)) {
            items_ok = false;
            return;
        }
        if (!steps.empty() && step <= steps.back()) {
            ctx.diag.error(item, "ramp steps must increase (" + std::to_string(step) + " after " +
                                     std::to_string(steps.back()) + ")");
            items_ok = false;
        }
        steps.push_back(step);
        last_at = item.at;
        last_path = item.path;
    });
    if (!list_ok) return;
    if (steps.empty() && items_ok) {
        ctx.diag.error(f, "must not be empty (e.g. [100] or [10, 50, 100])");
    } else if (items_ok && steps.back() != 100) {
        ctx.diag.error(last_at, last_path, "the last ramp step must be 100");
    }
    if (items_ok && !steps.empty()) ramp = std::move(steps);
}

}  // namespace

void load_shadow(LoadContext& ctx, const Field& f, ShadowConfig& shadow) {
    MapView m(ctx.diag, f, {"sample_rate", "max_inflight", "queue"});
    if (!m.valid()) return;
    m.number("sample_rate", shadow.sample_rate, kUnit);
    m.count("max_inflight", shadow.max_inflight, 1);
    m.count("queue", shadow.queue);
}

void load_judge(LoadContext& ctx, const Field& f, JudgeConfig& judge,
                const std::optional<TargetConfig>& candidate) {
    MapView m(
        ctx.diag, f,
        {"provider", "model", "prompt_file", "pass_score", "swap", "max_answer_bytes", "body"});
    if (!m.valid()) return;
    ctx.refs.read_provider(m, judge.provider);
    const bool model_ok = m.required_text("model", judge.model);
    m.string("prompt_file", judge.prompt_file);
    m.number("pass_score", judge.pass_score, Bounds{0.0, 100.0});
    m.boolean("swap", judge.swap);
    m.size("max_answer_bytes", judge.max_answer_bytes);
    // The same fields, checks and YAML-to-JSON typing as a provider's `body:`.
    if (const auto* b = m.get("body")) read_extra_body(ctx.diag, *b, judge.extra_body_json);
    // A model grading its own answers always agrees with itself: the evidence would be void.
    if (model_ok && candidate && candidate->provider == judge.provider &&
        candidate->model == judge.model) {
        m.error("model", "the judge must not be the candidate itself (" + judge.provider + "/" +
                             judge.model + ")");
    }
}

void load_promotion(LoadContext& ctx, const Field& f, PromotionConfig& promotion) {
    MapView m(ctx.diag, f,
              {"mode", "window", "min_samples", "threshold", "hold", "rollback_threshold",
               "confidence", "ramp", "step", "cooldown", "shadow_after_promotion"});
    if (!m.valid()) return;
    m.choice<PromotionMode>("mode", promotion.mode,
                            {{"shadow", PromotionMode::shadow},
                             {"auto", PromotionMode::automatic},
                             {"pin-primary", PromotionMode::pin_primary},
                             {"pin-candidate", PromotionMode::pin_candidate}});
    const bool window_ok = m.count("window", promotion.window, 1);
    if (m.count("min_samples", promotion.min_samples) && window_ok) {
        check_order(m, "min_samples", promotion.min_samples, "window", promotion.window, true);
    }
    const bool threshold_ok = m.number("threshold", promotion.threshold, kUnit);
    if (m.number("rollback_threshold", promotion.rollback_threshold, kUnit) && threshold_ok) {
        check_order(m, "rollback_threshold", promotion.rollback_threshold, "threshold",
                    promotion.threshold, false);
    }
    m.duration("hold", promotion.hold);
    m.number("confidence", promotion.confidence, kUnitOpen);
    if (const auto* r = m.get("ramp")) load_ramp(ctx, *r, promotion.ramp);
    m.duration("step", promotion.step);
    m.duration("cooldown", promotion.cooldown);
    m.number("shadow_after_promotion", promotion.shadow_after_promotion, kUnit);
}

}  // namespace turnout::config::detail
