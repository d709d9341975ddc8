#pragma once
/// Chat calls the gateway makes on its own behalf (mirrored copies, judge calls, `turnout
/// eval`): non-streamed, through an upstream pool, translated for Anthropic providers.
///
/// Includes Beast: include it only from the data-plane translation units.

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "gateway/upstream.hpp"
#include "gateway/upstream_body.hpp"
#include "routing/config.hpp"
#include "shadow/judge.hpp"

namespace turnout::gateway {

/// One side's answer as measured. `text` is the OpenAI chat.completion body when ok.
struct Measured {
    bool ok = false;
    std::string text;
    std::string error;
    double latency_ms = 0;
    double ttft_ms = 0;
    Usage usage;
};

/// Everything one background call needs (copied: the call outlives config swaps).
struct CallPlan {
    routing::ProviderConfig provider;
    routing::TargetConfig target;
    std::string credential;  ///< full header value; secret
    std::shared_ptr<UpstreamPool> pool;
    /// A judge call: a top-level null in `target.extra_body_json` (`judge.body`) removes that
    /// field from the request instead of sending it as null.
    bool null_removes_field = false;
};

/// openai_usage() of an answer's body text; zeros when it does not parse.
Usage openai_usage(std::string_view body);

/// Sends `openai_body` (a chat request; `stream` is forced off) to the plan's target within
/// `timeout`, or the provider's own `timeout` when that is shorter, and measures it.
asio::awaitable<Measured> background_call(CallPlan plan, std::string openai_body,
                                          std::string request_id, routing::Duration timeout);

/// One reading of the judge: its verdict and what the call cost.
struct JudgeReading {
    shadow::ParsedVerdict parsed;
    Usage usage;
};

/// The verdict on one pair, as the shadow loop and `turnout eval` both ask for it: the prompt
/// rendered from `template_text` (answers cut to `config.max_answer_bytes`), one judge call,
/// or with `config.swap` two at once with the answers in both orders. `judge` is the judge's
/// plan (its target carries `judge.body`, null_removes_field set).
asio::awaitable<JudgeReading> judge_pair(CallPlan judge, routing::JudgeConfig config,
                                         std::string template_text, shadow::JudgeInput input,
                                         std::string request_id, routing::Duration timeout);

}  // namespace turnout::gateway
