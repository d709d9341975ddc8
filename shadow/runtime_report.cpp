#include "shadow/runtime_report.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <vector>

#include "routing/route_table.hpp"

namespace turnout::shadow {
namespace {

constexpr std::size_t kStatsWindow = 200;  // shadow pairs kept for the side-by-side medians

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

double median(const std::deque<double>& values) {
    if (values.empty()) return 0.0;
    std::vector<double> sorted(values.begin(), values.end());
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    return sorted[sorted.size() / 2];
}

void push_bounded(std::deque<double>& values, double value) {
    values.push_back(value);
    if (values.size() > kStatsWindow) values.pop_front();
}

void write_side(const SideStats& side, Writer& writer) {
    writer.StartObject();
    writer.Key("latency_ms_p50");
    writer.Double(median(side.latency_ms));
    writer.Key("ttft_ms_p50");
    writer.Double(median(side.ttft_ms));
    writer.Key("output_tokens");
    writer.Uint64(side.output_tokens);
    writer.Key("cost_usd");
    writer.Double(side.cost_usd);
    writer.Key("calls");
    writer.Uint64(side.calls);
    writer.Key("cost_per_1k_requests_usd");
    writer.Double(side.cost_per_1k_requests());
    writer.EndObject();
}

std::string text_of(const rapidjson::StringBuffer& out) { return {out.GetString(), out.GetSize()}; }

}  // namespace

void SideStats::add(double latency, double ttft, std::uint64_t input_tokens, std::uint64_t output,
                    const config::PriceConfig& price) {
    push_bounded(latency_ms, latency);
    push_bounded(ttft_ms, ttft);
    ++calls;
    output_tokens += output;
    cost_usd += config::cost_usd(price, input_tokens, output);
}

double SideStats::cost_per_1k_requests() const {
    return calls == 0 ? 0.0 : cost_usd / static_cast<double>(calls) * 1000.0;
}

std::string route_json(const config::RouteConfig& route, const Controller& controller,
                       const SideStats& primary, const SideStats& candidate) {
    const auto status = controller.status();
    const auto& evidence = status.evidence;
    const auto& live =
        status.live_side == Side::candidate ? *route.candidate : routing::serving_target(route);
    rapidjson::StringBuffer out;
    Writer writer(out);
    writer.StartObject();
    writer.Key("name");
    writer.String(route.name);
    writer.Key("state");
    writer.String(std::string(to_string(status.state)));
    writer.Key("mode");
    writer.String(std::string(to_string(status.mode)));
    writer.Key("live_target");
    writer.String(live.provider + "/" + live.model);
    writer.Key("candidate_share");
    writer.Double(status.candidate_share);
    writer.Key("samples");
    writer.Uint(evidence.samples);
    writer.Key("passes");
    writer.Uint(evidence.passes);
    writer.Key("fails");
    writer.Uint(evidence.fails);
    writer.Key("errors");
    writer.Uint(evidence.errors);
    writer.Key("pass_rate");
    writer.Double(evidence.pass_rate);
    writer.Key("wilson_lower");
    writer.Double(evidence.wilson_lower);
    writer.Key("sprt_llr");
    writer.Double(evidence.sprt_llr);
    writer.Key("sprt_accept");
    writer.Double(status.sprt_accept);
    writer.Key("sprt_reject");
    writer.Double(status.sprt_reject);
    writer.Key("guarantee");
    writer.String(guarantee(route.promotion));
    writer.Key("window");
    writer.Uint(status.window);
    writer.Key("threshold");
    writer.Double(status.threshold);
    writer.Key("since");
    writer.String(rfc3339(status.since));
    writer.Key("total_verdicts");
    writer.Uint64(status.total_verdicts);
    writer.Key("primary");
    write_side(primary, writer);
    writer.Key("candidate");
    write_side(candidate, writer);
    writer.Key("projected_saving_per_1k_requests_usd");
    writer.Double(primary.cost_per_1k_requests() - candidate.cost_per_1k_requests());
    writer.EndObject();
    return text_of(out);
}

std::string verdict_line(const VerdictLine& line) {
    const ParsedVerdict& parsed = *line.parsed;
    rapidjson::StringBuffer out;
    Writer writer(out);
    writer.StartObject();
    writer.Key("time");
    writer.String(rfc3339(line.time));
    writer.Key("route");
    writer.String(line.route.data(), static_cast<rapidjson::SizeType>(line.route.size()));
    writer.Key("seq");
    writer.Uint64(line.seq);
    writer.Key("request_id");
    writer.String(line.request_id.data(), static_cast<rapidjson::SizeType>(line.request_id.size()));
    writer.Key("score");
    if (parsed.ok) {
        writer.Double(parsed.score);
    } else {
        writer.Null();
    }
    writer.Key("pass");
    writer.Bool(line.kind == VerdictKind::pass);
    writer.Key("verdict");
    writer.String(std::string(to_string(line.kind)));
    writer.Key("reason");
    writer.String(parsed.ok || parsed.error.empty() ? parsed.reason : parsed.error);
    writer.Key("diff_summary");
    writer.String(parsed.diff_summary);
    writer.Key("primary_latency_ms");
    writer.Double(line.primary.latency_ms);
    writer.Key("candidate_latency_ms");
    writer.Double(line.candidate.latency_ms);
    writer.Key("primary_output_tokens");
    writer.Uint64(line.primary.output_tokens);
    writer.Key("candidate_output_tokens");
    writer.Uint64(line.candidate.output_tokens);
    writer.Key("primary_cost_usd");
    writer.Double(line.primary.cost_usd);
    writer.Key("candidate_cost_usd");
    writer.Double(line.candidate.cost_usd);
    writer.EndObject();
    return text_of(out);
}

std::string event_line(std::string_view route, const TransitionEvent& event) {
    const std::string event_json = to_json(event);
    rapidjson::StringBuffer out;
    Writer writer(out);
    writer.StartObject();
    writer.Key("route");
    writer.String(route.data(), static_cast<rapidjson::SizeType>(route.size()));
    writer.Key("event");
    writer.RawValue(event_json.data(), event_json.size(), rapidjson::kObjectType);
    writer.EndObject();
    return text_of(out);
}

metrics::RouteStateLabel state_label(RouteState state) {
    switch (state) {
        case RouteState::shadowing:
            return metrics::RouteStateLabel::shadowing;
        case RouteState::ramping:
            return metrics::RouteStateLabel::ramping;
        case RouteState::promoted:
            return metrics::RouteStateLabel::promoted;
        case RouteState::rolled_back:
            return metrics::RouteStateLabel::rolled_back;
        case RouteState::pinned:
            return metrics::RouteStateLabel::pinned;
    }
    return metrics::RouteStateLabel::shadowing;
}

metrics::Verdict metrics_verdict(VerdictKind kind) {
    switch (kind) {
        case VerdictKind::pass:
            return metrics::Verdict::pass;
        case VerdictKind::fail:
            return metrics::Verdict::fail;
        case VerdictKind::error:
            return metrics::Verdict::error;
    }
    return metrics::Verdict::error;
}

}  // namespace turnout::shadow
