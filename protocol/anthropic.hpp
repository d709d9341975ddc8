#pragma once
/// Translation between OpenAI's chat.completions API and Anthropic's Messages API
/// (`anthropic-version: 2023-06-01`), both directions, streaming included. Plain C++: no I/O,
/// no Beast; the proxy feeds it bodies and whole SSE events and relays what comes back.
///
/// Every function takes untrusted input: bad JSON or wrong types give an error value, never a
/// crash. One header per direction, each listing at the top of its .cpp the fields it leaves
/// unmapped, and why:
/// - anthropic_request.hpp: OpenAI request -> Anthropic request (translate_request).
/// - anthropic_response.hpp: Anthropic answer -> OpenAI answer (translate_response,
///   translate_error, finish_reason_for).
/// - anthropic_stream.hpp: Anthropic event stream -> OpenAI chunks (StreamTranslator).

#include "protocol/anthropic_request.hpp"
#include "protocol/anthropic_response.hpp"
#include "protocol/anthropic_stream.hpp"
