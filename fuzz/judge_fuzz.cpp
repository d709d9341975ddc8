// The judge's readers (shadow/judge.hpp): the verdict in the judge's reply text and in its
// chat.completion, and the answer texts taken from a primary's or candidate's answer, streamed
// (one data payload per line) or not. Also the prompt template checks, since prompt_file text
// comes from outside the code too.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "shadow/judge.hpp"

namespace shadow = turnout::shadow;

namespace {

void check_verdict(const shadow::ParsedVerdict& verdict) {
    if (verdict.ok) {
        // The contract: a verdict that parsed has a finite score within [0, 100].
        if (!std::isfinite(verdict.score) || verdict.score < 0 || verdict.score > 100) {
            std::abort();
        }
        if (!verdict.error.empty()) std::abort();
    } else if (verdict.error.empty() || verdict.score != 0) {
        std::abort();
    }
    if (verdict.reason.size() > 4096 || verdict.diff_summary.size() > 4096) std::abort();
    const auto kind = shadow::classify(verdict, 95);
    if (!verdict.ok && kind != shadow::VerdictKind::error) std::abort();
    (void)shadow::judge_disagrees(verdict, 95);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_verdict(shadow::parse_judge_reply(text));
    check_verdict(shadow::parse_judge_completion(text));
    (void)shadow::answer_text_from_openai(text);

    std::vector<std::string> payloads;
    for (std::size_t start = 0; start <= text.size();) {
        const auto end = text.find('\n', start);
        payloads.emplace_back(
            text.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    (void)shadow::answer_text_from_stream(payloads);

    if (shadow::check_judge_template(text).empty()) {
        shadow::JudgeInput input{std::string(text), "answer A", "answer B", 95};
        (void)shadow::render_judge_prompt(text, input, "TURNOUT-0123456789abcdef01234567");
    }
    return 0;
}
