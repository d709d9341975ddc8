#include "sim/anthropic_api.hpp"

#include "sim/anthropic_request.hpp"
#include "sim/errors.hpp"

namespace turnout::sim {

namespace asio = boost::asio;

asio::awaitable<After> AnthropicApi::serve(std::string_view path, Plan plan) {
    const bool post = ex_.request().method == "POST";
    if (post && path == "/v1/messages") {
        co_return co_await messages(plan, false);
    }
    if (post && path == "/v1/messages/count_tokens") {
        co_return co_await messages(plan, true);
    }
    if (ex_.request().method == "GET" && path == "/v1/models") {
        if (const unsigned refused =
                check_anthropic_headers(ex_.request(), ex_.body(), ex_.scratch());
            refused != 0) {
            co_return co_await ex_.send_json(refused);
        }
        if (plan.faults.reset_after >= 0) {
            co_return ex_.reset_connection();
        }
        ex_.body().assign(kAnthropicModelsBody);
        co_return co_await ex_.send_json(200);
    }
    render_anthropic_error(ex_.body(), "not_found_error", "Not Found");
    co_return co_await ex_.send_json(404);
}

asio::awaitable<After> AnthropicApi::messages(Plan plan, bool count_only) {
    if (const unsigned refused = check_anthropic_headers(ex_.request(), ex_.body(), ex_.scratch());
        refused != 0) {
        co_return co_await ex_.send_json(refused);
    }
    Document doc = ex_.new_document();
    if (!ex_.parse_body(doc)) {
        co_return co_await ex_.send_json(400);
    }
    MessagesRequest request;
    if (!read_messages_request(doc, count_only, request, ex_.scratch())) {
        render_anthropic_error(ex_.body(), "invalid_request_error", ex_.scratch());
        co_return co_await ex_.send_json(400);
    }
    if (count_only) {
        render_token_count(ex_.body(), ex_.new_reply(request.model).prompt_tokens);
        co_return co_await ex_.send_json(200);
    }
    const MessageAnswer answer = plan_answer(ex_.new_reply(request.model), request, plan,
                                             ex_.request(), ex_.state().tool_preamble);
    if (request.stream) {
        co_return co_await stream_message(answer, plan);
    }
    if (plan.faults.reset_after >= 0) {
        co_return ex_.reset_connection();
    }
    // What a mid-stream overload looks like without a stream.
    if (plan.faults.stream_error >= 0) {
        render_anthropic_error(ex_.body(), "overloaded_error", "Overloaded");
        co_return co_await ex_.send_json(529);
    }
    Generation timing = plan.gen;
    timing.tokens = answer.deltas();
    co_await ex_.sleep_until(Clock::now() + generation_time(timing));
    render_message(ex_.body(), answer);
    co_return co_await ex_.send_json(200);
}

// Deltas are paced at tps from the first one and counted across blocks for the faults.
asio::awaitable<After> AnthropicApi::stream_message(MessageAnswer answer, Plan plan) {
    PacedStream stream(ex_, plan);
    co_await stream.wait_first_token();
    StreamStep step = co_await open_message(stream, answer);
    stream.start_pacing();
    if (step == StreamStep::ok) {
        step = co_await stream_block(stream, answer, 0);
    }
    if (step == StreamStep::ok && answer.tool) {
        step = co_await stream_block(stream, answer, 1);
    }
    if (step == StreamStep::ok) {
        step = co_await close_message(stream, answer);
    }
    co_return stream.finish(step);
}

asio::awaitable<StreamStep> AnthropicApi::open_message(PacedStream& stream, MessageAnswer answer) {
    const StreamStep step = co_await stream.send_head();
    if (step != StreamStep::ok) {
        co_return step;
    }
    render_message_start(ex_.frame(), answer);
    co_return co_await stream.send();
}

// Block 0 is the text (followed by a ping), block 1 the tool_use.
asio::awaitable<StreamStep> AnthropicApi::stream_block(PacedStream& stream, MessageAnswer answer,
                                                       std::size_t block) {
    const bool text = block == 0;
    render_block_start(ex_.frame(), answer, block);
    StreamStep step = co_await stream.send();
    if (step == StreamStep::ok && text) {
        render_ping(ex_.frame());
        step = co_await stream.send();
    }
    const std::size_t first = text ? 0 : answer.text.tokens;
    const std::size_t count = text ? answer.text.tokens : kToolInputDeltas;
    for (std::size_t i = 0; i < count && step == StreamStep::ok; ++i) {
        step = co_await stream.before_content(first + i);
        if (step == StreamStep::ok) {
            render_block_delta(ex_.frame(), answer, block, i);
            step = co_await stream.send();
        }
    }
    if (step != StreamStep::ok) {
        co_return step;
    }
    render_block_stop(ex_.frame(), block);
    co_return co_await stream.send();
}

asio::awaitable<StreamStep> AnthropicApi::close_message(PacedStream& stream, MessageAnswer answer) {
    StreamStep step = co_await stream.before_close(answer.deltas());
    if (step == StreamStep::ok) {
        render_message_delta(ex_.frame(), answer);
        step = co_await stream.send();
    }
    if (step != StreamStep::ok) {
        co_return step;
    }
    render_message_stop(ex_.frame());
    co_return co_await stream.send(true);
}

}  // namespace turnout::sim
