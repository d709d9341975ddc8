#pragma once
/// The OpenAI endpoints (--kind openai) on one connection: /v1/chat/completions (answered, a
/// stable share degraded with --degrade-rate, or judged with --role judge), /v1/completions,
/// /v1/embeddings and /v1/models, whole or streamed.

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>

#include "sim/exchange.hpp"
#include "sim/openai_answers.hpp"
#include "sim/plan.hpp"
#include "sim/stream_pacing.hpp"

namespace turnout::sim {

/// Lives as long as its session, on the session's io_context.
class OpenAiApi {
  public:
    explicit OpenAiApi(Exchange& exchange) : ex_(exchange) {}

    /// Answers the request at `path`; its planned failures (status, hang, garbage) are handled
    /// before, its resets here.
    boost::asio::awaitable<After> serve(std::string_view path, Plan plan);

  private:
    enum class Endpoint { completions, embeddings };

    boost::asio::awaitable<After> chat_completions(Plan plan);
    boost::asio::awaitable<After> send_verdict(ChatRequest chat, Plan plan);
    boost::asio::awaitable<After> answer_once(Endpoint endpoint, Plan plan);

    boost::asio::awaitable<After> stream_chat(ChatRequest chat, Plan plan);
    boost::asio::awaitable<StreamStep> open_stream(PacedStream& stream, ChatRequest chat);
    boost::asio::awaitable<StreamStep> stream_pieces(PacedStream& stream, ChatRequest chat,
                                                     Plan plan);
    boost::asio::awaitable<StreamStep> close_stream(PacedStream& stream, ChatRequest chat,
                                                    Plan plan);

    Exchange& ex_;
    std::string chunk_prefix_;  // `{"id":...,"choices":` shared by the frames of one stream
    std::string judge_prompt_;  // judge: the text parts of a prompt, joined
    std::string verdict_;       // judge: the reply text
    Reply reply_;
};

}  // namespace turnout::sim
