#pragma once
/// Chat calls the gateway makes on its own behalf (mirrored copies, judge calls, `turnout
/// eval`): non-streamed, through an upstream pool, translated for Anthropic providers, timed.
///
/// No Beast here: the pool is only declared.

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "protocol/upstream_body.hpp"

namespace turnout::upstream {

class UpstreamPool;

/// One side's answer as measured. `text` is the OpenAI chat.completion body when ok.
struct Measured {
    bool ok = false;
    std::string text;
    std::string error;
    double latency_ms = 0;
    double ttft_ms = 0;
    protocol::Usage usage;
};

/// Everything one background call needs (copied: the call outlives config swaps).
struct CallPlan {
    config::ProviderConfig provider;
    config::TargetConfig target;
    std::string credential;  ///< full header value; secret
    std::shared_ptr<UpstreamPool> pool;
    /// A judge call: a top-level null in `target.extra_body_json` (`judge.body`) removes that
    /// field from the request instead of sending it as null.
    bool null_removes_field = false;
};

/// Sends `openai_body` (a chat request; `stream` is forced off) to the plan's target within
/// `timeout`, or the provider's own `timeout` when that is shorter, and measures it.
boost::asio::awaitable<Measured> background_call(CallPlan plan, std::string openai_body,
                                                 std::string request_id, config::Duration timeout);

}  // namespace turnout::upstream
