// The judge's prompt: a template rendered for one pair, the request and both answers fenced so
// that no content can break out of its block; answers cut to the judge's budget.
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <array>
#include <random>

#include "base/json_input.hpp"
#include "shadow/json_util.hpp"
#include "shadow/judge.hpp"
#include "shadow/judge_placeholders.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;
using rapidjson::Document;
using rapidjson::SizeType;
using rapidjson::Value;

constexpr std::string_view kBoundaryPrefix = "TURNOUT-";
// Replaces the boundary inside content. It has no run of 8 or more [A-Za-z0-9_-] characters,
// so it can never contain an accepted boundary (see usable_boundary).
constexpr std::string_view kRemovedMarker = "[removed: fence text]";
constexpr std::size_t kMinBoundaryLength = 8;

/// "\n" for every line break a model may read as one: CRLF, CR, NEL, LS and PS.
std::string normalise_line_breaks(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\r') {
            if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
            out += '\n';
        } else if (c == '\xC2' && i + 1 < text.size() && text[i + 1] == '\x85') {
            ++i;
            out += '\n';
        } else if (c == '\xE2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
                   (text[i + 2] == '\xA8' || text[i + 2] == '\xA9')) {
            i += 2;
            out += '\n';
        } else {
            out += c;
        }
    }
    return out;
}

/// Every occurrence of `boundary` replaced, scanning left to right. The marker cannot contain
/// the boundary, so the result has no occurrence left (each piece kept was searched whole).
std::string neutralise_boundary(std::string_view text, std::string_view boundary) {
    std::string out;
    out.reserve(text.size());
    std::size_t from = 0;
    for (std::size_t at = text.find(boundary); at != std::string_view::npos;
         at = text.find(boundary, from)) {
        out.append(text.substr(from, at - from));
        out.append(kRemovedMarker);
        from = at + boundary.size();
    }
    out.append(text.substr(from));
    return out;
}

/// A line whose trimmed text starts with `<<<` gets a leading backslash, one whose trimmed
/// text ends with `>>>` a backslash right after those brackets: no line can then pass for a
/// fence, however the judge trims it. A backslash is not a boundary character, so this
/// cannot create a boundary occurrence.
std::string escape_fence_lines(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 16);
    while (true) {
        const std::size_t newline = text.find('\n');
        const std::string_view line = text.substr(0, newline);
        const std::string_view core = trim(line);
        const bool opens = core.starts_with("<<<");
        const bool closes = core.ends_with(">>>");
        if (opens) out += '\\';
        if (closes) {
            const std::size_t core_end =
                static_cast<std::size_t>(core.data() - line.data()) + core.size();
            out.append(line.substr(0, core_end));
            out += '\\';
            out.append(line.substr(core_end));
        } else {
            out.append(line);
        }
        if (newline == std::string_view::npos) break;
        out += '\n';
        text.remove_prefix(newline + 1);
    }
    return out;
}

/// The boundary the fences rely on: only [A-Za-z0-9_-] (so neither the removal marker nor an
/// escaping backslash can form it) and long enough not to occur by accident.
bool usable_boundary(std::string_view boundary) {
    return boundary.size() >= kMinBoundaryLength &&
           std::all_of(boundary.begin(), boundary.end(),
                       [](char c) { return is_name_char(static_cast<unsigned char>(c)); });
}

/// Appends `<<<B:NAME`, the escaped content and `B:NAME>>>`, each on lines of their own.
void append_fenced(std::string& out, std::string_view name, std::string_view content,
                   std::string_view boundary) {
    if (!out.empty() && out.back() != '\n') out += '\n';
    out.append("<<<").append(boundary).append(":").append(name).append("\n");
    const std::string escaped =
        escape_fence_lines(neutralise_boundary(normalise_line_breaks(content), boundary));
    out.append(escaped);
    if (!escaped.empty() && escaped.back() != '\n') out += '\n';
    out.append(boundary).append(":").append(name).append(">>>");
}

// Members of a chat request that define what was asked; the rest (model, sampling, stream,
// user, ...) says nothing about what a good answer is.
constexpr std::array<std::string_view, 7> kTaskMembers = {
    "messages",        "tools",     "tool_choice",  "parallel_tool_calls",
    "response_format", "functions", "function_call"};

/// The request as the judge reads it: the task-defining members, pretty-printed.
std::string request_text(std::string_view request_json) {
    Document doc;
    if (!base::parse_json_input(request_json, doc) || !doc.IsObject()) {
        return std::string(request_json);
    }
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    writer.SetIndent(' ', 2);
    const bool has_task =
        std::any_of(kTaskMembers.begin(), kTaskMembers.end(),
                    [&](std::string_view name) { return member(doc, name) != nullptr; });
    if (!has_task) {
        doc.Accept(writer);
    } else {
        writer.StartObject();
        for (const std::string_view name : kTaskMembers) {
            if (const Value* value = member(doc, name)) {
                writer.Key(name.data(), static_cast<SizeType>(name.size()));
                value->Accept(writer);
            }
        }
        writer.EndObject();
    }
    return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace

std::string truncate_answer(std::string_view answer, std::uint64_t max_bytes) {
    if (max_bytes == 0 || answer.size() <= max_bytes) return std::string(answer);
    const std::string_view kept = utf8_prefix(answer, static_cast<std::size_t>(max_bytes));
    std::string out(kept);
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += "[... truncated by turnout: " + std::to_string(kept.size()) + " of " +
           std::to_string(answer.size()) + " bytes shown]";
    return out;
}

std::string random_boundary() {
    // One device per thread: opening it per call would cost a syscall or more each time.
    thread_local std::random_device device;
    constexpr std::string_view kHex = "0123456789ABCDEF";
    std::string boundary(kBoundaryPrefix);
    for (int word = 0; word < 3; ++word) {
        std::uint32_t bits = device();
        for (int nibble = 0; nibble < 8; ++nibble, bits >>= 4) boundary += kHex[bits & 0x0F];
    }
    return boundary;
}

std::string render_judge_prompt(std::string_view template_text, const JudgeInput& input,
                                std::string_view boundary) {
    std::string fresh;
    if (!usable_boundary(boundary)) {
        fresh = random_boundary();
        boundary = fresh;
    }
    std::string out;
    out.reserve(template_text.size() + input.request_json.size() + input.answer_a.size() +
                input.answer_b.size() + 256);
    std::size_t from = 0;
    for (std::size_t at = template_text.find("{{"); at != std::string_view::npos;
         at = template_text.find("{{", from)) {
        const std::string_view placeholder = placeholder_at(template_text.substr(at));
        const bool fenced = placeholder == "{{REQUEST}}" || placeholder == "{{ANSWER_A}}" ||
                            placeholder == "{{ANSWER_B}}";
        if (placeholder != "{{PASS_SCORE}}" && placeholder != "{{BOUNDARY}}" && !fenced) {
            // Not one of ours: copied as it stands, and the scan goes on after its "{".
            out.append(template_text.substr(from, at + 1 - from));
            from = at + 1;
            continue;
        }
        out.append(template_text.substr(from, at - from));
        from = at + placeholder.size();
        if (placeholder == "{{PASS_SCORE}}") {
            out.append(shortest_number(input.pass_score));
        } else if (placeholder == "{{BOUNDARY}}") {
            out.append(boundary);
        } else {
            const std::string_view name = placeholder.substr(2, placeholder.size() - 4);
            append_fenced(out, name,
                          name == "REQUEST" ? request_text(input.request_json)
                                            : truncate_answer(name == "ANSWER_A" ? input.answer_a
                                                                                 : input.answer_b,
                                                              input.max_answer_bytes),
                          boundary);
            // The closing fence must be a whole line, whatever the template puts after it.
            if (from < template_text.size() && template_text[from] != '\n') out += '\n';
        }
    }
    out.append(template_text.substr(from));
    return out;
}

}  // namespace turnout::shadow
