#pragma once
/// Reading request bodies: RapidJSON documents in a per-connection arena, and the few member
/// accessors every API's reader uses. Plain C++.

#include <rapidjson/document.h>

#include <array>
#include <string_view>

namespace turnout::sim {

using Document = rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>,
                                            rapidjson::MemoryPoolAllocator<>>;

/// Per-connection memory for RapidJSON: a typical request parses without touching the heap;
/// bigger documents spill into heap chunks that `clear()` frees. Clear only once the previous
/// document is gone.
class JsonArena {
  public:
    JsonArena()
        : values_(value_buffer_.data(), value_buffer_.size()),
          stack_(stack_buffer_.data(), stack_buffer_.size()) {}
    JsonArena(const JsonArena&) = delete;
    JsonArena& operator=(const JsonArena&) = delete;

    Document make_document() { return Document(&values_, 1024, &stack_); }
    void clear() {
        values_.Clear();
        stack_.Clear();
    }

  private:
    alignas(8) std::array<char, 16 * 1024> value_buffer_{};
    alignas(8) std::array<char, 4 * 1024> stack_buffer_{};
    rapidjson::MemoryPoolAllocator<> values_;
    rapidjson::MemoryPoolAllocator<> stack_;
};

/// Parses `body` into `doc` as a JSON object, as a real API would: hostile bodies (too deep,
/// duplicate keys) are refused, never a stack overflow. Returns "" or what is wrong.
std::string_view parse_object(std::string_view body, Document& doc);

/// The member `name` of `object`; null when absent.
const rapidjson::Value* find(const rapidjson::Value& object, const char* name);

/// A string value's text; the value must be a string.
std::string_view view(const rapidjson::Value& value);

/// The string member `name`, or `fallback` when it is absent or not a string.
std::string_view string_member(const rapidjson::Value& object, const char* name,
                               std::string_view fallback);

/// True when the member `name` is the boolean true.
bool bool_member(const rapidjson::Value& object, const char* name);

}  // namespace turnout::sim
