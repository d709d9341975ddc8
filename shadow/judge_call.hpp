#pragma once
/// The judge's verdict on one pair, asked the same way by the shadow loop and `turnout eval`.
///
/// No Beast here.

#include <boost/asio/awaitable.hpp>
#include <string>

#include "config/config.hpp"
#include "shadow/judge.hpp"
#include "upstream/call.hpp"

namespace turnout::shadow {

/// One reading of the judge: its verdict and what the call cost.
struct JudgeReading {
    ParsedVerdict parsed;
    protocol::Usage usage;
};

/// The verdict on one pair: the prompt rendered from `template_text` (answers cut to
/// `config.max_answer_bytes`), one judge call, or with `config.swap` two at once with the
/// answers in both orders. `judge` is the judge's plan (its target carries `judge.body`,
/// null_removes_field set).
boost::asio::awaitable<JudgeReading> judge_pair(upstream::CallPlan judge,
                                                config::JudgeConfig config,
                                                std::string template_text, JudgeInput input,
                                                std::string request_id, config::Duration timeout);

}  // namespace turnout::shadow
