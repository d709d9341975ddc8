#include "shadow/judge_call.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <tuple>

namespace turnout::shadow {

namespace asio = boost::asio;
using upstream::CallPlan;
using upstream::Measured;

namespace {

/// Renders the prompt from `template_text`, asks the judge and parses its verdict.
asio::awaitable<JudgeReading> judge_once(CallPlan judge, std::string template_text,
                                         shadow::JudgeInput input, std::string request_id,
                                         config::Duration timeout) {
    const std::string prompt =
        shadow::render_judge_prompt(template_text, input, shadow::random_boundary());
    Measured reply = co_await upstream::background_call(
        judge, shadow::judge_request_body(judge.target.model, prompt), std::move(request_id),
        timeout);
    JudgeReading reading;
    reading.usage = reply.usage;
    if (reply.ok) {
        reading.parsed = shadow::parse_judge_completion(reply.text);
    } else {
        reading.parsed.error = "judge call failed: " + reply.error;
    }
    co_return reading;
}

}  // namespace

/// The pair's verdict: one judge call, or with `judge.swap` two at once, the answers in both
/// orders (shadow::combine_swapped).
asio::awaitable<JudgeReading> judge_pair(CallPlan judge, config::JudgeConfig config,
                                         std::string template_text, shadow::JudgeInput input,
                                         std::string request_id, config::Duration timeout) {
    if (!config.swap) {
        co_return co_await judge_once(std::move(judge), std::move(template_text), std::move(input),
                                      request_id + "-judge", timeout);
    }
    using namespace asio::experimental::awaitable_operators;
    std::string swapped_template = shadow::swapped_judge_template(template_text);
    auto as_given =
        judge_once(judge, std::move(template_text), input, request_id + "-judge", timeout);
    auto swapped = judge_once(judge, std::move(swapped_template), input,
                              request_id + "-judge-swapped", timeout);
    std::tuple<JudgeReading, JudgeReading> readings =
        co_await (std::move(as_given) && std::move(swapped));
    const JudgeReading& first = std::get<0>(readings);
    const JudgeReading& second = std::get<1>(readings);
    JudgeReading combined;
    combined.parsed = shadow::combine_swapped(first.parsed, second.parsed, config.pass_score);
    combined.usage = {first.usage.input + second.usage.input,
                      first.usage.output + second.usage.output};
    co_return combined;
}

}  // namespace turnout::shadow
