#pragma once
/// The OpenAI API's answers (--kind openai): what a chat request asks for, and chat
/// completions (whole or as stream chunks), text completions, embeddings and the model list,
/// rendered into reused strings. Plain C++.

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "sim/answer_text.hpp"
#include "sim/plan.hpp"

namespace turnout::sim {

inline constexpr std::string_view kModelsBody =
    R"({"object":"list","data":[{"id":"sim-model","object":"model",)"
    R"("owned_by":"turnout-simulator"}]})";

/// The fields of a chat request the simulator acts on; views into the parsed document.
struct ChatRequest {
    std::string_view model = kDefaultModel;
    bool stream = false;
    bool include_usage = false;
    std::optional<std::string_view> tool;  // the function to call instead of answering
};

ChatRequest read_chat_request(const rapidjson::Value& request);

/// How many inputs an embeddings request holds.
std::size_t embedding_inputs(const rapidjson::Value& request);

/// A chat.completion answering `gen`'s text, or calling `tool`.
void render_chat_completion(std::string& out, const Reply& reply, const Generation& gen,
                            std::optional<std::string_view> tool);

/// A chat.completion whose content is `text` (`completion_tokens` long).
void render_chat_text(std::string& out, const Reply& reply, std::string_view text,
                      std::size_t completion_tokens);

void render_text_completion(std::string& out, const Reply& reply, const Generation& gen);

/// One embedding per input, deterministic per request body.
void render_embeddings(std::string& out, const Reply& reply, std::size_t inputs,
                       std::string_view body);

// A chat stream: frames `data: {chunk}\n\n`, each chunk starting with a prefix shared by the
// stream (`{"id":...,"choices":`, rendered once).

void render_chunk_prefix(std::string& prefix, const Reply& reply);

/// The first chunk: the assistant role, and the tool call's name when a tool is called.
void render_first_chunk(std::string& frame, std::string_view prefix, const ChatRequest& chat);

/// Content chunk `index`: a token, or a piece of the tool call's arguments.
void render_piece_chunk(std::string& frame, std::string_view prefix, const ChatRequest& chat,
                        const Generation& gen, std::size_t index);

/// The chunk with the finish reason.
void render_finish_chunk(std::string& frame, std::string_view prefix, const ChatRequest& chat);

/// The usage chunk (stream_options.include_usage).
void render_usage_chunk(std::string& frame, std::string_view prefix, const Reply& reply,
                        std::size_t completion_tokens);

}  // namespace turnout::sim
