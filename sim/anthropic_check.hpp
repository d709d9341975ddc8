#pragma once
/// Shared by the checks of a Messages request (anthropic_request.cpp, anthropic_messages.cpp):
/// the problem text under construction and the checks both files use. Plain C++.
///
/// Requests are validated like the real API validates them (required headers and fields,
/// alternating roles, non-empty text, tool_use/tool_result pairing, extra fields rejected), so
/// a translation bug in the gateway fails here as it would in production. Error messages follow
/// the real ones' `path: message` form without copying every wording.

#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "sim/json_writer.hpp"

namespace turnout::sim {

/// Builds the `path: message` of the first problem found into a reused string. A Scope adds
/// one path element and removes it again unless a problem was found under it.
class Problem {
  public:
    explicit Problem(std::string& out) : out_(out) { out_.clear(); }

    class Scope {
      public:
        Scope(Problem& problem, std::string_view name) : problem_(problem), mark_(begin()) {
            problem_.out_ += name;
        }
        Scope(Problem& problem, std::size_t index) : problem_(problem), mark_(begin()) {
            append_number(problem_.out_, index);
        }
        ~Scope() {
            if (!problem_.found_) {
                problem_.out_.resize(mark_);
            }
        }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

      private:
        std::size_t begin() {
            const std::size_t mark = problem_.out_.size();
            if (mark != 0) {
                problem_.out_ += '.';
            }
            return mark;
        }
        Problem& problem_;
        std::size_t mark_;
    };

    /// Records the problem `a b c` at the current path; returns false (for `return fail(...)`).
    bool fail(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
        found_ = true;
        if (!out_.empty()) {
            out_ += ": ";
        }
        out_ += a;
        out_ += b;
        out_ += c;
        return false;
    }

  private:
    std::string& out_;
    bool found_ = false;
};

template <std::size_t N>
bool one_of(const std::array<std::string_view, N>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

/// A problem with the member `name`.
bool fail_field(Problem& problem, std::string_view name, std::string_view a,
                std::string_view b = {}, std::string_view c = {});

/// The string member `name` into `out`, or a problem when it is absent or not a string.
bool string_field(const rapidjson::Value& object, const char* name, Problem& problem,
                  std::string_view& out);

/// A `text` block (in messages or `system`): its text must hold more than whitespace.
bool check_text_block(const rapidjson::Value& block, Problem& problem);

/// `messages`: present, alternating user/assistant from user, valid blocks, tools paired.
bool check_messages(const rapidjson::Value& request, Problem& problem);

/// Whether a message's content holds a block of `type` whose `key` is `value` (any value when
/// `value` is empty).
bool has_block(const rapidjson::Value& message, std::string_view type, const char* key,
               std::string_view value);

}  // namespace turnout::sim
