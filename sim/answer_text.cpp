#include "sim/answer_text.hpp"

#include "sim/json_writer.hpp"

namespace turnout::sim {

void append_token(std::string& out, const Generation& gen, std::size_t index) {
    append_escaped(out, (*gen.words)[index % gen.words->size()]);
    if (index + 1 < gen.tokens) {
        out += ' ';
    } else if (gen.degraded) {
        out += kDegradedMarker;
    }
}

void append_content(std::string& out, const Generation& gen) {
    out += '"';
    for (std::size_t i = 0; i < gen.tokens; ++i) {
        append_token(out, gen, i);
    }
    out += '"';
}

std::string_view tool_argument_piece(std::size_t index) {
    const std::size_t begin = index * kToolArguments.size() / kToolArgumentPieces;
    const std::size_t end = (index + 1) * kToolArguments.size() / kToolArgumentPieces;
    return kToolArguments.substr(begin, end - begin);
}

}  // namespace turnout::sim
