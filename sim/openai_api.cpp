#include "sim/openai_api.hpp"

#include "sim/degraded.hpp"
#include "sim/errors.hpp"
#include "sim/judge.hpp"

namespace turnout::sim {

namespace asio = boost::asio;

asio::awaitable<After> OpenAiApi::serve(std::string_view path, Plan plan) {
    const bool post = ex_.request().method == "POST";
    if (post && path == "/v1/chat/completions") {
        co_return co_await chat_completions(plan);
    }
    if (post && path == "/v1/completions") {
        co_return co_await answer_once(Endpoint::completions, plan);
    }
    if (post && path == "/v1/embeddings") {
        co_return co_await answer_once(Endpoint::embeddings, plan);
    }
    if (ex_.request().method == "GET" && path == "/v1/models") {
        if (plan.faults.reset_after >= 0) {
            co_return ex_.reset_connection();
        }
        ex_.body().assign(kModelsBody);
        co_return co_await ex_.send_json(200);
    }
    render_openai_error(ex_.body(), "no such endpoint on the simulator", "invalid_request_error",
                        "not_found");
    co_return co_await ex_.send_json(404);
}

asio::awaitable<After> OpenAiApi::chat_completions(Plan plan) {
    Document doc = ex_.new_document();
    if (!ex_.parse_body(doc)) {
        co_return co_await ex_.send_json(400);
    }
    const ChatRequest chat = read_chat_request(doc);
    if (ex_.settings().role == Role::judge) {
        compose_verdict(ex_.settings(), doc, judge_prompt_, verdict_);
        co_return co_await send_verdict(chat, plan);
    }
    SimState& state = ex_.state();
    plan.gen.degraded = !chat.tool && plan.gen.tokens > 0 &&
                        degraded_prompt(doc, state.degrade_rate.load(std::memory_order_relaxed));
    if (plan.gen.degraded) {
        bump(state.stats.degraded_answers);
    }
    if (chat.stream) {
        co_return co_await stream_chat(chat, plan);
    }
    if (plan.faults.reset_after >= 0) {
        co_return ex_.reset_connection();
    }
    co_await ex_.sleep_until(Clock::now() + generation_time(plan.gen));
    render_chat_completion(ex_.body(), ex_.new_reply(chat.model), plan.gen, chat.tool);
    co_return co_await ex_.send_json(200);
}

// Always a whole chat.completion, even when a stream was asked for: the gateway's judge call
// is not streamed. Paced like an answer of the verdict's length.
asio::awaitable<After> OpenAiApi::send_verdict(ChatRequest chat, Plan plan) {
    if (plan.faults.reset_after >= 0) {
        co_return ex_.reset_connection();
    }
    const std::size_t tokens = (verdict_.size() + 3) / 4;
    Generation timing = plan.gen;
    timing.tokens = tokens;
    co_await ex_.sleep_until(Clock::now() + generation_time(timing));
    render_chat_text(ex_.body(), ex_.new_reply(chat.model), verdict_, tokens);
    bump(ex_.state().stats.judge_replies);
    co_return co_await ex_.send_json(200);
}

// /v1/completions and /v1/embeddings: never streamed; an embedding takes the time to first
// token only.
asio::awaitable<After> OpenAiApi::answer_once(Endpoint endpoint, Plan plan) {
    Document doc = ex_.new_document();
    if (!ex_.parse_body(doc)) {
        co_return co_await ex_.send_json(400);
    }
    if (plan.faults.reset_after >= 0) {
        co_return ex_.reset_connection();
    }
    const bool embeddings = endpoint == Endpoint::embeddings;
    co_await ex_.sleep_until(
        Clock::now() + (embeddings ? Clock::duration(plan.gen.ttft) : generation_time(plan.gen)));
    const Reply reply = ex_.new_reply(string_member(doc, "model", kDefaultModel));
    if (embeddings) {
        render_embeddings(ex_.body(), reply, embedding_inputs(doc), ex_.request().body);
    } else {
        render_text_completion(ex_.body(), reply, plan.gen);
    }
    co_return co_await ex_.send_json(200);
}

asio::awaitable<After> OpenAiApi::stream_chat(ChatRequest chat, Plan plan) {
    // x-sim-stream-error is the Anthropic API's `error` event: OpenAI streams have none.
    plan.faults.stream_error = -1;
    PacedStream stream(ex_, plan);
    co_await stream.wait_first_token();
    reply_ = ex_.new_reply(chat.model);
    render_chunk_prefix(chunk_prefix_, reply_);

    StreamStep step = co_await open_stream(stream, chat);
    if (step == StreamStep::ok) {
        step = co_await stream_pieces(stream, chat, plan);
    }
    if (step == StreamStep::ok) {
        step = co_await close_stream(stream, chat, plan);
    }
    co_return stream.finish(step);
}

asio::awaitable<StreamStep> OpenAiApi::open_stream(PacedStream& stream, ChatRequest chat) {
    const StreamStep step = co_await stream.send_head();
    if (step != StreamStep::ok) {
        co_return step;
    }
    render_first_chunk(ex_.frame(), chunk_prefix_, chat);
    co_return co_await stream.send();
}

// Content frames (tokens, or tool-call argument fragments) paced at tps from the first one.
asio::awaitable<StreamStep> OpenAiApi::stream_pieces(PacedStream& stream, ChatRequest chat,
                                                     Plan plan) {
    const std::size_t pieces = chat.tool ? kToolArgumentPieces : plan.gen.tokens;
    stream.start_pacing();
    for (std::size_t i = 0; i < pieces; ++i) {
        StreamStep step = co_await stream.before_content(i);
        if (step == StreamStep::ok) {
            render_piece_chunk(ex_.frame(), chunk_prefix_, chat, plan.gen, i);
            step = co_await stream.send();
        }
        if (step != StreamStep::ok) {
            co_return step;
        }
    }
    co_return StreamStep::ok;
}

asio::awaitable<StreamStep> OpenAiApi::close_stream(PacedStream& stream, ChatRequest chat,
                                                    Plan plan) {
    const std::size_t pieces = chat.tool ? kToolArgumentPieces : plan.gen.tokens;
    StreamStep step = co_await stream.before_close(pieces);
    if (step == StreamStep::ok) {
        render_finish_chunk(ex_.frame(), chunk_prefix_, chat);
        step = co_await stream.send();
    }
    if (step == StreamStep::ok && chat.include_usage) {
        render_usage_chunk(ex_.frame(), chunk_prefix_, reply_, plan.gen.tokens);
        step = co_await stream.send();
    }
    if (step != StreamStep::ok) {
        co_return step;
    }
    ex_.frame().assign("data: [DONE]\n\n");
    co_return co_await stream.send(true);
}

}  // namespace turnout::sim
