#pragma once
/// Error bodies in each API's shape: OpenAI's `{"error":{message,type,code}}` and Anthropic's
/// `{"type":"error","error":{type,message}}` typed by status. Plain C++.

#include <string>
#include <string_view>

#include "sim/state.hpp"

namespace turnout::sim {

void render_openai_error(std::string& out, std::string_view message, std::string_view type,
                         std::string_view code);

void render_anthropic_error(std::string& out, std::string_view type, std::string_view message);

/// The Anthropic error type the real API sends with `status`.
std::string_view anthropic_error_type(unsigned status);

/// A refused request in the kind's shape: OpenAI's with `code`, or Anthropic's typed by status.
void render_failure(std::string& out, Kind kind, unsigned status, std::string_view message,
                    std::string_view code);

/// The body of a planned failure (--fault-status, x-sim-status).
void render_fault(std::string& out, Kind kind, unsigned status);

}  // namespace turnout::sim
