#include "sim/openai_answers.hpp"

#include "base/hash.hpp"
#include "sim/json_writer.hpp"
#include "sim/request_json.hpp"

namespace turnout::sim {
namespace {

constexpr std::string_view kToolCallId = "call_sim_1";
constexpr std::size_t kEmbeddingSize = 8;

// A tool is called when tools are offered, tool_choice is not "none" and the conversation does
// not already end with a tool's result (which the model would now answer in prose).
std::optional<std::string_view> tool_to_call(const rapidjson::Value& request) {
    const auto tools = request.FindMember("tools");
    if (tools == request.MemberEnd() || !tools->value.IsArray() || tools->value.Empty()) {
        return std::nullopt;
    }
    if (string_member(request, "tool_choice", "") == "none") {
        return std::nullopt;
    }
    const auto messages = request.FindMember("messages");
    if (messages != request.MemberEnd() && messages->value.IsArray() && !messages->value.Empty()) {
        const rapidjson::Value& last = messages->value[messages->value.Size() - 1];
        if (last.IsObject() && string_member(last, "role", "") == "tool") {
            return std::nullopt;
        }
    }
    const rapidjson::Value& first = tools->value[0];
    if (!first.IsObject()) {
        return "function";
    }
    const auto function = first.FindMember("function");
    if (function == first.MemberEnd() || !function->value.IsObject()) {
        return "function";
    }
    return string_member(function->value, "name", "function");
}

void append_usage(std::string& out, std::size_t prompt, std::size_t completion) {
    out += R"("usage":{"prompt_tokens":)";
    append_number(out, prompt);
    out += R"(,"completion_tokens":)";
    append_number(out, completion);
    out += R"(,"total_tokens":)";
    append_number(out, prompt + completion);
    out += '}';
}

void append_reply_head(std::string& out, std::string_view id_prefix, std::string_view object,
                       const Reply& reply) {
    out += R"({"id":")";
    out += id_prefix;
    append_number(out, reply.id);
    out += R"(","object":")";
    out += object;
    out += R"(","created":)";
    append_number(out, static_cast<std::uint64_t>(reply.created));
    out += R"(,"model":)";
    append_json_string(out, reply.model);
}

void append_tool_call(std::string& out, std::string_view tool, std::string_view arguments,
                      bool with_index) {
    out += R"([{)";
    if (with_index) {
        out += R"("index":0,)";
    }
    out += R"("id":")";
    out += kToolCallId;
    out += R"(","type":"function","function":{"name":)";
    append_json_string(out, tool);
    out += R"(,"arguments":)";
    append_json_string(out, arguments);
    out += "}}]";
}

// A chat.completion up to its message's content, which the caller appends.
void begin_chat_completion(std::string& out, const Reply& reply) {
    out.clear();
    append_reply_head(out, "chatcmpl-sim-", "chat.completion", reply);
    out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
}

// `finish_reason` is JSON (a quoted string).
void end_chat_completion(std::string& out, const Reply& reply, std::string_view finish_reason,
                         std::size_t completion_tokens) {
    out += R"(},"logprobs":null,"finish_reason":)";
    out += finish_reason;
    out += "}],";
    append_usage(out, reply.prompt_tokens, completion_tokens);
    out += '}';
}

// Deterministic per input, so a test can tell two inputs apart.
void append_embedding(std::string& out, std::uint64_t seed) {
    out += '[';
    for (std::size_t k = 0; k < kEmbeddingSize; ++k) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const double unit = static_cast<double>(seed >> 11) / 9007199254740992.0;
        append_fixed(out, unit * 2 - 1);
        out += k + 1 < kEmbeddingSize ? ',' : ']';
    }
}

void begin_chunk(std::string& frame, std::string_view prefix) {
    frame = "data: ";
    frame += prefix;
}

// `finish_reason` is JSON (null or a quoted string).
void end_chunk(std::string& frame, std::string_view finish_reason) {
    frame += R"(,"logprobs":null,"finish_reason":)";
    frame += finish_reason;
    frame += "}]}\n\n";
}

}  // namespace

ChatRequest read_chat_request(const rapidjson::Value& request) {
    ChatRequest chat;
    chat.model = string_member(request, "model", kDefaultModel);
    chat.stream = bool_member(request, "stream");
    const auto options = request.FindMember("stream_options");
    chat.include_usage = options != request.MemberEnd() && options->value.IsObject() &&
                         bool_member(options->value, "include_usage");
    chat.tool = tool_to_call(request);
    return chat;
}

std::size_t embedding_inputs(const rapidjson::Value& request) {
    const auto input = request.FindMember("input");
    if (input == request.MemberEnd() || !input->value.IsArray() || input->value.Empty()) {
        return 1;
    }
    // An array of numbers is one tokenised input; an array of strings or arrays is a batch.
    return input->value[0].IsNumber() ? 1 : input->value.Size();
}

void render_chat_completion(std::string& out, const Reply& reply, const Generation& gen,
                            std::optional<std::string_view> tool) {
    begin_chat_completion(out, reply);
    if (tool) {
        out += R"(null,"tool_calls":)";
        append_tool_call(out, *tool, kToolArguments, false);
    } else {
        append_content(out, gen);
    }
    end_chat_completion(out, reply, tool ? R"("tool_calls")" : R"("stop")", gen.tokens);
}

void render_chat_text(std::string& out, const Reply& reply, std::string_view text,
                      std::size_t completion_tokens) {
    begin_chat_completion(out, reply);
    append_json_string(out, text);
    end_chat_completion(out, reply, R"("stop")", completion_tokens);
}

void render_text_completion(std::string& out, const Reply& reply, const Generation& gen) {
    out.clear();
    append_reply_head(out, "cmpl-sim-", "text_completion", reply);
    out += R"(,"choices":[{"text":)";
    append_content(out, gen);
    out += R"(,"index":0,"logprobs":null,"finish_reason":"stop"}],)";
    append_usage(out, reply.prompt_tokens, gen.tokens);
    out += '}';
}

void render_embeddings(std::string& out, const Reply& reply, std::size_t inputs,
                       std::string_view body) {
    out.clear();
    out += R"({"object":"list","data":[)";
    const std::uint64_t seed = base::fnv1a(body);
    for (std::size_t i = 0; i < inputs; ++i) {
        out += i == 0 ? R"({"object":"embedding","index":)" : R"(,{"object":"embedding","index":)";
        append_number(out, i);
        out += R"(,"embedding":)";
        append_embedding(out, seed ^ i);
        out += '}';
    }
    out += R"(],"model":)";
    append_json_string(out, reply.model);
    out += R"(,"usage":{"prompt_tokens":)";
    append_number(out, reply.prompt_tokens);
    out += R"(,"total_tokens":)";
    append_number(out, reply.prompt_tokens);
    out += "}}";
}

void render_chunk_prefix(std::string& prefix, const Reply& reply) {
    prefix.clear();
    append_reply_head(prefix, "chatcmpl-sim-", "chat.completion.chunk", reply);
    prefix += R"(,"choices":)";
}

void render_first_chunk(std::string& frame, std::string_view prefix, const ChatRequest& chat) {
    begin_chunk(frame, prefix);
    if (chat.tool) {
        frame += R"([{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":)";
        append_tool_call(frame, *chat.tool, "", true);
        frame += '}';
    } else {
        frame += R"([{"index":0,"delta":{"role":"assistant","content":""})";
    }
    end_chunk(frame, "null");
}

void render_piece_chunk(std::string& frame, std::string_view prefix, const ChatRequest& chat,
                        const Generation& gen, std::size_t index) {
    begin_chunk(frame, prefix);
    if (chat.tool) {
        frame += R"([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":")";
        append_escaped(frame, tool_argument_piece(index));
        frame += R"("}}]})";
    } else {
        frame += R"([{"index":0,"delta":{"content":")";
        append_token(frame, gen, index);
        frame += R"("})";
    }
    end_chunk(frame, "null");
}

void render_finish_chunk(std::string& frame, std::string_view prefix, const ChatRequest& chat) {
    begin_chunk(frame, prefix);
    frame += R"([{"index":0,"delta":{})";
    end_chunk(frame, chat.tool ? R"("tool_calls")" : R"("stop")");
}

void render_usage_chunk(std::string& frame, std::string_view prefix, const Reply& reply,
                        std::size_t completion_tokens) {
    begin_chunk(frame, prefix);
    frame += "[],";
    append_usage(frame, reply.prompt_tokens, completion_tokens);
    frame += "}\n\n";
}

}  // namespace turnout::sim
