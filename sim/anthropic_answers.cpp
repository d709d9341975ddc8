#include "sim/anthropic_answers.hpp"

#include <algorithm>

#include "sim/errors.hpp"
#include "sim/json_writer.hpp"

namespace turnout::sim {
namespace {

constexpr std::string_view kAnthropicToolId = "toolu_sim_1";

// Fast mode is the body's `speed: "fast"`, or the fast-mode beta without `speed: "standard"`.
std::string_view answer_speed(const MessagesRequest& request, bool beta_fast) {
    if (request.speed == "fast" || (beta_fast && request.speed != "standard")) {
        return "fast";
    }
    return request.speed.empty() ? std::string_view() : "standard";
}

std::string_view tool_input_piece(std::size_t index) {
    return index == 0 ? std::string_view() : tool_argument_piece(index - 1);
}

void append_message_head(std::string& out, const Reply& reply) {
    out += R"({"id":"msg_sim_)";
    append_number(out, reply.id);
    out += R"(","type":"message","role":"assistant","model":)";
    append_json_string(out, reply.model);
    out += R"(,"content":)";
}

void append_speed(std::string& out, std::string_view speed) {
    if (!speed.empty()) {
        out += R"(,"speed":)";
        append_json_string(out, speed);
    }
}

void append_message_usage(std::string& out, std::size_t input, std::size_t output,
                          std::string_view speed) {
    out += R"("usage":{"input_tokens":)";
    append_number(out, input);
    out += R"(,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":)";
    append_number(out, output);
    append_speed(out, speed);
    out += '}';
}

// An SSE event: `event: <type>` and a data object whose `type` repeats it, as the real API
// sends them. end_event closes the object.
void begin_event(std::string& out, std::string_view type) {
    out = "event: ";
    out += type;
    out += "\ndata: {\"type\":\"";
    out += type;
    out += '"';
}

void end_event(std::string& out) { out += "}\n\n"; }

// An event whose data is its type and the block's index.
void begin_block_event(std::string& out, std::string_view type, std::size_t block) {
    begin_event(out, type);
    out += R"(,"index":)";
    append_number(out, block);
}

}  // namespace

unsigned check_anthropic_headers(const RequestData& request, std::string& body,
                                 std::string& scratch) {
    if (request.header("x-api-key").empty()) {
        render_anthropic_error(body, "authentication_error", "x-api-key header is required");
        return 401;
    }
    const std::string_view version = request.header("anthropic-version");
    if (version.empty()) {
        render_anthropic_error(body, "invalid_request_error",
                               "anthropic-version: header is required");
        return 400;
    }
    if (version != "2023-06-01" && version != "2023-01-01") {
        scratch = "anthropic-version: unsupported version '";
        scratch += version;
        scratch += '\'';
        render_anthropic_error(body, "invalid_request_error", scratch);
        return 400;
    }
    return 0;
}

MessageAnswer plan_answer(const Reply& reply, const MessagesRequest& request, const Plan& plan,
                          const RequestData& headers,
                          const std::vector<std::string>& tool_preamble) {
    MessageAnswer answer;
    answer.reply = reply;
    answer.text = plan.gen;
    answer.tool = request.tool;
    if (request.tool) {
        answer.text.words = &tool_preamble;
        answer.text.tokens = tool_preamble.size();
        answer.stop_reason = "tool_use";
        answer.output_tokens = answer.text.tokens + kToolArgumentPieces;
    } else {
        answer.text.tokens = std::min(plan.gen.tokens, request.max_tokens);
        answer.stop_reason = plan.gen.tokens > request.max_tokens ? "max_tokens" : "end_turn";
        answer.output_tokens = answer.text.tokens;
    }
    // anthropic-beta is a comma-separated list, possibly over several header fields.
    bool beta_fast = false;
    for (std::size_t i = 0; i < headers.header_count; ++i) {
        const auto& [name, value] = headers.headers[i];
        beta_fast =
            beta_fast || (name == "anthropic-beta" && value.find("fast-mode") != std::string::npos);
    }
    answer.speed = answer_speed(request, beta_fast);
    return answer;
}

void render_message(std::string& out, const MessageAnswer& answer) {
    out.clear();
    append_message_head(out, answer.reply);
    out += R"([{"type":"text","text":)";
    append_content(out, answer.text);
    out += '}';
    if (answer.tool) {
        out += R"(,{"type":"tool_use","id":")";
        out += kAnthropicToolId;
        out += R"(","name":)";
        append_json_string(out, *answer.tool);
        out += R"(,"input":)";
        out += kToolArguments;
        out += '}';
    }
    out += R"(],"stop_reason":")";
    out += answer.stop_reason;
    out += R"(","stop_sequence":null,)";
    append_message_usage(out, answer.reply.prompt_tokens, answer.output_tokens, answer.speed);
    out += '}';
}

void render_token_count(std::string& out, std::size_t input_tokens) {
    out = R"({"input_tokens":)";
    append_number(out, input_tokens);
    out += '}';
}

void render_message_start(std::string& frame, const MessageAnswer& answer) {
    begin_event(frame, "message_start");
    frame += R"(,"message":)";
    append_message_head(frame, answer.reply);
    frame += R"([],"stop_reason":null,"stop_sequence":null,)";
    append_message_usage(frame, answer.reply.prompt_tokens, 1, {});
    frame += '}';
    end_event(frame);
}

void render_block_start(std::string& frame, const MessageAnswer& answer, std::size_t block) {
    begin_block_event(frame, "content_block_start", block);
    if (block == 0) {
        frame += R"(,"content_block":{"type":"text","text":""})";
    } else {
        frame += R"(,"content_block":{"type":"tool_use","id":")";
        frame += kAnthropicToolId;
        frame += R"(","name":)";
        append_json_string(frame, *answer.tool);
        frame += R"(,"input":{}})";
    }
    end_event(frame);
}

void render_ping(std::string& frame) {
    begin_event(frame, "ping");
    end_event(frame);
}

void render_block_delta(std::string& frame, const MessageAnswer& answer, std::size_t block,
                        std::size_t index) {
    begin_block_event(frame, "content_block_delta", block);
    if (block == 0) {
        frame += R"(,"delta":{"type":"text_delta","text":")";
        append_token(frame, answer.text, index);
    } else {
        frame += R"(,"delta":{"type":"input_json_delta","partial_json":")";
        append_escaped(frame, tool_input_piece(index));
    }
    frame += R"("})";
    end_event(frame);
}

void render_block_stop(std::string& frame, std::size_t block) {
    begin_block_event(frame, "content_block_stop", block);
    end_event(frame);
}

void render_message_delta(std::string& frame, const MessageAnswer& answer) {
    begin_event(frame, "message_delta");
    frame += R"(,"delta":{"stop_reason":")";
    frame += answer.stop_reason;
    frame += R"(","stop_sequence":null},"usage":{"output_tokens":)";
    append_number(frame, answer.output_tokens);
    append_speed(frame, answer.speed);
    frame += '}';
    end_event(frame);
}

void render_message_stop(std::string& frame) {
    begin_event(frame, "message_stop");
    end_event(frame);
}

}  // namespace turnout::sim
