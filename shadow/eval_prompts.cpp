// `turnout eval`'s prompts file: its lines checked as chat requests, hashed canonically, and
// each request addressed to a model.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <utility>

#include "shadow/eval_report.hpp"
#include "shadow/eval_text.hpp"
#include "shadow/json_util.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// Writes `value` with object members sorted by name. Recursive: only on documents from
/// parse_eval_json, whose depth is bounded.
void write_canonical(Writer& writer, const rapidjson::Value& value) {
    if (value.IsObject()) {
        std::vector<const rapidjson::Value::Member*> members;
        for (const auto& member : value.GetObject()) members.push_back(&member);
        std::stable_sort(members.begin(), members.end(), [](const auto* a, const auto* b) {
            return std::string_view(a->name.GetString(), a->name.GetStringLength()) <
                   std::string_view(b->name.GetString(), b->name.GetStringLength());
        });
        writer.StartObject();
        for (const auto* member : members) {
            writer.Key(member->name.GetString(), member->name.GetStringLength());
            write_canonical(writer, member->value);
        }
        writer.EndObject();
    } else if (value.IsArray()) {
        writer.StartArray();
        for (const auto& item : value.GetArray()) write_canonical(writer, item);
        writer.EndArray();
    } else {
        value.Accept(writer);
    }
}

/// `value` as compact JSON with object members sorted by name at every level.
std::string canonical_text(const rapidjson::Value& value) {
    rapidjson::StringBuffer out;
    Writer writer(out);
    write_canonical(writer, value);
    return {out.GetString(), out.GetSize()};
}

/// Why `document` is not a usable chat request; "" when it is.
std::string request_problem(const rapidjson::Document& document) {
    if (!document.IsObject()) return "expected a JSON object with `messages`";
    const auto* messages = member(document, "messages");
    if (messages == nullptr) return "missing `messages`";
    if (!messages->IsArray() || messages->Empty()) {
        return "`messages` must be a non-empty array";
    }
    for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
        const auto& message = (*messages)[i];
        if (!message.IsObject() || member(message, "role") == nullptr ||
            !member(message, "role")->IsString()) {
            return "`messages[" + std::to_string(i) + "]` must be an object with a string `role`";
        }
    }
    return {};
}

/// Parses one non-blank line into `prompt`; returns the problem, or "" when usable.
std::string parse_prompt_line(std::string_view line, EvalPrompt& prompt) {
    rapidjson::Document document;
    const base::JsonInputResult parsed = parse_eval_json(line, document);
    if (parsed.error == base::JsonInputError::too_deep) return "JSON nested too deeply";
    if (parsed.error == base::JsonInputError::duplicate_key) {
        return "not valid JSON: an object names the same key twice (column " +
               std::to_string(parsed.offset + 1) + ")";
    }
    if (!parsed) return "not valid JSON (column " + std::to_string(parsed.offset + 1) + ")";
    if (std::string problem = request_problem(document); !problem.empty()) return problem;
    prompt.request_json = json_text(document);
    prompt.hash = sha256_hex(canonical_text(document));
    return {};
}

}  // namespace

PromptFile parse_prompts(std::string_view text) {
    PromptFile file;
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    for_each_line(text, [&file](std::size_t line_number, std::string_view line) {
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) return;
        EvalPrompt prompt;
        prompt.line_number = line_number;
        std::string problem = parse_prompt_line(line, prompt);
        if (problem.empty()) {
            file.prompts.push_back(std::move(prompt));
        } else {
            file.problems.push_back({line_number, std::move(problem)});
        }
    });
    return file;
}

std::string format_problem(std::string_view file, const PromptProblem& problem) {
    return std::string(file) + ":" + std::to_string(problem.line_number) + ": " + problem.reason;
}

std::string canonical_json(std::string_view json) {
    rapidjson::Document document;
    if (!parse_eval_json(json, document)) return {};
    return canonical_text(document);
}

std::string request_with_model(std::string_view request_json, std::string_view model) {
    rapidjson::Document document;
    if (!parse_eval_json(request_json, document) || !document.IsObject()) {
        return std::string(request_json);
    }
    rapidjson::Value name(model.data(), static_cast<rapidjson::SizeType>(model.size()),
                          document.GetAllocator());
    if (auto found = document.FindMember("model"); found != document.MemberEnd()) {
        found->value = std::move(name);
    } else {
        document.AddMember("model", std::move(name), document.GetAllocator());
    }
    return json_text(document);
}

}  // namespace turnout::shadow
