#include "sim/plan.hpp"

#include <cstdint>
#include <string_view>

#include "sim/values.hpp"

namespace turnout::sim {
namespace {

bool apply_override(Plan& plan, std::vector<std::string>& words, std::string_view key,
                    std::string_view value) {
    std::int64_t number = 0;
    if (key == "status") {
        return parse_status(value, plan.faults.status);
    }
    if (key == "ttft-ms") {
        const bool ok = parse_bounded(value, 0, 86'400'000, number);
        plan.gen.ttft = std::chrono::milliseconds(number);
        return ok;
    }
    if (key == "tps") {
        return parse_rate(value, plan.gen.tps);
    }
    if (key == "tokens") {
        const bool ok = parse_bounded(value, 0, 1'000'000, number);
        plan.gen.tokens = static_cast<std::size_t>(number);
        return ok;
    }
    if (key == "text") {
        split_words(value, words);
        plan.gen.words = &words;
        return !words.empty();
    }
    if (key == "reset-after") {
        return parse_bounded(value, -1, 1'000'000, plan.faults.reset_after);
    }
    if (key == "stream-error") {
        return parse_bounded(value, -1, 1'000'000, plan.faults.stream_error);
    }
    if (key == "hang") {
        return parse_flag(value, plan.faults.hang);
    }
    if (key == "garbage") {
        return parse_flag(value, plan.faults.garbage);
    }
    return true;
}

}  // namespace

std::string plan_request(const Settings& settings, const RequestData& request,
                         std::vector<std::string>& words, Plan& plan) {
    plan.faults = settings.faults;
    plan.gen = {settings.ttft, settings.tps, settings.tokens, &settings.words};
    for (std::size_t i = 0; i < request.header_count; ++i) {
        const auto& [name, value] = request.headers[i];
        if (name.starts_with("x-sim-") &&
            !apply_override(plan, words, std::string_view(name).substr(6), value)) {
            return "invalid value for header " + name + ": '" + value + "'";
        }
    }
    return {};
}

Clock::duration generation_time(const Generation& gen) {
    Clock::duration total = gen.ttft;
    if (gen.tps > 0) {
        total += std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(static_cast<double>(gen.tokens) / gen.tps));
    }
    return total;
}

}  // namespace turnout::sim
