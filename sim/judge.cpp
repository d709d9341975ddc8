#include "sim/judge.hpp"

#include <algorithm>
#include <optional>
#include <string_view>

#include "sim/answer_text.hpp"
#include "sim/json_writer.hpp"
#include "sim/request_json.hpp"
#include "sim/values.hpp"

namespace turnout::sim {
namespace {

constexpr std::string_view kJudgeRefusal = "I cannot evaluate this request.";
constexpr std::string_view kJudgeGarbage =
    "Both answers read reasonably well to me. Answer B phrases a few things differently from "
    "answer A, but I would rather not put a number on it without more context.";
constexpr int kJudgePassScore = 95;

std::string_view trim(std::string_view text) {
    const std::size_t first = text.find_first_not_of(kWhitespace);
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(kWhitespace) - first + 1);
}

bool boundary_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

// The boundary X of an opening line `<<<X:NAME`; empty when `line` is not one.
std::string_view opening_boundary(std::string_view line, std::string_view name) {
    line = trim(line);
    if (!line.starts_with("<<<") || line.size() <= 3 + 1 + name.size() || !line.ends_with(name) ||
        line[line.size() - name.size() - 1] != ':') {
        return {};
    }
    const std::string_view boundary = line.substr(3, line.size() - 3 - 1 - name.size());
    return std::all_of(boundary.begin(), boundary.end(), boundary_char) ? boundary
                                                                        : std::string_view();
}

bool is_closing(std::string_view line, std::string_view boundary, std::string_view name) {
    line = trim(line);
    return line.size() == boundary.size() + 1 + name.size() + 3 && line.starts_with(boundary) &&
           line[boundary.size()] == ':' && line.substr(boundary.size() + 1, name.size()) == name &&
           line.ends_with(">>>");
}

/// Calls `visit(line, begin)` for each line of `text` from `from` (without its line break)
/// until it returns true; returns that line's offset, or npos.
template <class Visit>
std::size_t find_line(std::string_view text, std::size_t from, Visit visit) {
    while (from < text.size()) {
        const std::size_t end = std::min(text.find('\n', from), text.size());
        if (visit(text.substr(from, end - from))) {
            return from;
        }
        from = end + 1;
    }
    return std::string_view::npos;
}

// The content between the first opening line of `name` and the closing line with the same
// boundary; nullopt when there is no such pair.
std::optional<std::string_view> fenced_block(std::string_view text, std::string_view name) {
    std::optional<std::string_view> block;
    find_line(text, 0, [&](std::string_view line) {
        const std::string_view boundary = opening_boundary(line, name);
        if (boundary.empty()) {
            return false;
        }
        const std::size_t begin =
            static_cast<std::size_t>(line.data() - text.data()) + line.size() + 1;
        const std::size_t close = find_line(text, begin, [&](std::string_view candidate) {
            return is_closing(candidate, boundary, name);
        });
        if (close == std::string_view::npos) {
            return false;
        }
        std::string_view content = text.substr(begin, close - begin);
        if (content.ends_with('\n')) {
            content.remove_suffix(1);
        }
        if (content.ends_with('\r')) {
            content.remove_suffix(1);
        }
        block = content;
        return true;
    });
    return block;
}

// The text of the last user message: its string content, or its text parts joined by line
// breaks (the join is built in `scratch`).
std::string_view last_user_text(const rapidjson::Value& request, std::string& scratch) {
    const auto messages = request.FindMember("messages");
    if (messages == request.MemberEnd() || !messages->value.IsArray()) {
        return {};
    }
    const auto& list = messages->value;
    for (rapidjson::SizeType i = list.Size(); i-- > 0;) {
        if (!list[i].IsObject() || string_member(list[i], "role", "") != "user") {
            continue;
        }
        const auto content = list[i].FindMember("content");
        if (content == list[i].MemberEnd()) {
            return {};
        }
        if (content->value.IsString()) {
            return {content->value.GetString(), content->value.GetStringLength()};
        }
        scratch.clear();
        if (content->value.IsArray()) {
            for (const auto& part : content->value.GetArray()) {
                if (part.IsObject() && string_member(part, "type", "") == "text") {
                    scratch += scratch.empty() ? "" : "\n";
                    scratch += string_member(part, "text", "");
                }
            }
        }
        return scratch;
    }
    return {};
}

struct JudgeVerdict {
    int score = 0;
    std::string_view reason;
    std::string_view diff_summary;
};

/// nullopt when the prompt lacks either answer's fences.
std::optional<JudgeVerdict> judge_answers(std::string_view prompt, int forced_score) {
    const std::optional<std::string_view> a = fenced_block(prompt, "ANSWER_A");
    const std::optional<std::string_view> b = fenced_block(prompt, "ANSWER_B");
    if (!a || !b) {
        return std::nullopt;
    }
    if (forced_score >= 0) {
        return JudgeVerdict{forced_score, "The simulated judge was told to give this score.",
                            "not compared (--judge-score)"};
    }
    if (b->find(kDegradedTag) != std::string_view::npos) {
        return JudgeVerdict{40, "Answer B is degraded: it cannot replace reference answer A.",
                            "B is marked [degraded]"};
    }
    if (*b == *a) {
        return JudgeVerdict{100, "Answer B is identical to reference answer A.", "none"};
    }
    return JudgeVerdict{97, "Answer B says what answer A says in different words.", "wording only"};
}

// The verdict as a chatty model writes it: a preamble, then the JSON in a code fence.
void render_verdict(std::string& out, const JudgeVerdict& verdict) {
    out = "Here is my verdict:\n```json\n{\"score\": ";
    append_number(out, static_cast<std::uint64_t>(verdict.score));
    out += ", \"pass\": ";
    out += verdict.score >= kJudgePassScore ? "true" : "false";
    out += ", \"reason\": ";
    append_json_string(out, verdict.reason);
    out += ", \"diff_summary\": ";
    append_json_string(out, verdict.diff_summary);
    out += "}\n```";
}

}  // namespace

void compose_verdict(const Settings& settings, const rapidjson::Value& request,
                     std::string& scratch, std::string& verdict) {
    if (settings.judge_garbage) {
        verdict.assign(kJudgeGarbage);
        return;
    }
    const std::string_view prompt = last_user_text(request, scratch);
    if (const auto found = judge_answers(prompt, settings.judge_score)) {
        render_verdict(verdict, *found);
    } else {
        verdict.assign(kJudgeRefusal);
    }
}

}  // namespace turnout::sim
