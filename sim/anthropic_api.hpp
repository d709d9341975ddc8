#pragma once
/// The Anthropic Messages API endpoints (--kind anthropic) on one connection: /v1/messages
/// (whole or streamed), /v1/messages/count_tokens and /v1/models.

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <string_view>

#include "sim/anthropic_answers.hpp"
#include "sim/exchange.hpp"
#include "sim/plan.hpp"
#include "sim/stream_pacing.hpp"

namespace turnout::sim {

/// Lives as long as its session, on the session's io_context.
class AnthropicApi {
  public:
    explicit AnthropicApi(Exchange& exchange) : ex_(exchange) {}

    /// Answers the request at `path`; its planned failures (status, hang, garbage) are handled
    /// before, its resets and stream errors here.
    boost::asio::awaitable<After> serve(std::string_view path, Plan plan);

  private:
    boost::asio::awaitable<After> messages(Plan plan, bool count_only);
    boost::asio::awaitable<After> stream_message(MessageAnswer answer, Plan plan);
    boost::asio::awaitable<StreamStep> open_message(PacedStream& stream, MessageAnswer answer);
    boost::asio::awaitable<StreamStep> stream_block(PacedStream& stream, MessageAnswer answer,
                                                    std::size_t block);
    boost::asio::awaitable<StreamStep> close_message(PacedStream& stream, MessageAnswer answer);

    Exchange& ex_;
};

}  // namespace turnout::sim
