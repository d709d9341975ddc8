#include "routing/json_input.hpp"

#include <string>
#include <unordered_set>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace turnout::routing {
namespace {

/// One open object's keys: a short list scanned linearly, a hash set once the object grows
/// (so an object of many keys costs O(n), not O(n^2)).
struct ObjectKeys {
    static constexpr std::size_t kLinearKeys = 16;
    std::vector<std::string> list;
    std::unordered_set<std::string> set;

    /// False when `key` was seen before in this object.
    bool insert(std::string_view key) {
        if (!set.empty()) return set.emplace(key).second;
        for (const auto& seen : list) {
            if (seen == key) return false;
        }
        list.emplace_back(key);
        if (list.size() > kLinearKeys) {
            set.reserve(list.size() * 2);
            for (auto& seen : list) set.insert(std::move(seen));
            list.clear();
        }
        return true;
    }
};

/// Forwards the reader's events to the document while counting depth and keys; returning
/// false stops the parse at once.
template <typename Target>
class GuardedHandler {
public:
    GuardedHandler(Target& target, const JsonInputOptions& options, JsonInputError& error)
        : target_(target), options_(options), error_(error) {}

    bool Null() { return target_.Null(); }
    bool Bool(bool b) { return target_.Bool(b); }
    bool Int(int i) { return target_.Int(i); }
    bool Uint(unsigned u) { return target_.Uint(u); }
    bool Int64(std::int64_t i) { return target_.Int64(i); }
    bool Uint64(std::uint64_t u) { return target_.Uint64(u); }
    bool Double(double d) { return target_.Double(d); }
    bool RawNumber(const char* str, rapidjson::SizeType length, bool copy) {
        return target_.RawNumber(str, length, copy);
    }
    bool String(const char* str, rapidjson::SizeType length, bool copy) {
        return target_.String(str, length, copy);
    }
    bool StartObject() {
        if (!enter()) return false;
        if (options_.reject_duplicate_keys) objects_.emplace_back();
        return target_.StartObject();
    }
    bool Key(const char* str, rapidjson::SizeType length, bool copy) {
        if (options_.reject_duplicate_keys && !objects_.back().insert({str, length})) {
            error_ = JsonInputError::duplicate_key;
            return false;
        }
        return target_.Key(str, length, copy);
    }
    bool EndObject(rapidjson::SizeType members) {
        --depth_;
        if (options_.reject_duplicate_keys) objects_.pop_back();
        return target_.EndObject(members);
    }
    bool StartArray() { return enter() && target_.StartArray(); }
    bool EndArray(rapidjson::SizeType elements) {
        --depth_;
        return target_.EndArray(elements);
    }

private:
    bool enter() {
        if (++depth_ > options_.max_depth) {
            error_ = JsonInputError::too_deep;
            return false;
        }
        return true;
    }

    Target& target_;
    const JsonInputOptions& options_;
    JsonInputError& error_;
    int depth_ = 0;
    std::vector<ObjectKeys> objects_;
};

/// Document::Populate's generator: runs the reader with the guard in front of the document.
struct GuardedParse {
    std::string_view text;
    const JsonInputOptions& options;
    JsonInputResult result;

    template <unsigned Flags, typename Handler>
    bool run(Handler& handler) {
        rapidjson::MemoryStream memory(text.data(), text.size());
        rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> input(memory);
        rapidjson::Reader reader;
        const rapidjson::ParseResult parsed =
            reader.Parse<Flags | rapidjson::kParseIterativeFlag>(input, handler);
        if (parsed.IsError()) {
            if (result.error == JsonInputError::none) result.error = JsonInputError::syntax;
            result.offset = parsed.Offset();
            return false;
        }
        return true;
    }

    template <typename Target>
    bool operator()(Target& target) {
        GuardedHandler<Target> handler(target, options, result.error);
        constexpr unsigned kLenient = rapidjson::kParseCommentsFlag |
                                      rapidjson::kParseTrailingCommasFlag |
                                      rapidjson::kParseNanAndInfFlag;
        constexpr unsigned kPrecise = rapidjson::kParseFullPrecisionFlag;
        if (options.lenient && options.full_precision) return run<kLenient | kPrecise>(handler);
        if (options.lenient) return run<kLenient>(handler);
        if (options.full_precision) return run<kPrecise>(handler);
        return run<rapidjson::kParseDefaultFlags>(handler);
    }
};

}  // namespace

JsonInputResult parse_json_input(std::string_view text, rapidjson::Document& document,
                                 const JsonInputOptions& options) {
    document.SetNull();
    GuardedParse parse{text, options, {}};
    if (text.empty()) {
        parse.result.error = JsonInputError::syntax;
        return parse.result;
    }
    document.Populate(parse);
    if (!parse.result) document.SetNull();
    return parse.result;
}

JsonInputResult check_json_input(std::string_view text, const JsonInputOptions& options) {
    GuardedParse parse{text, options, {}};
    if (text.empty()) {
        parse.result.error = JsonInputError::syntax;
        return parse.result;
    }
    rapidjson::BaseReaderHandler<> nothing;
    parse(nothing);
    return parse.result;
}

std::string_view describe(JsonInputError error) {
    switch (error) {
        case JsonInputError::none: return "valid JSON";
        case JsonInputError::syntax: return "not valid JSON";
        case JsonInputError::too_deep: return "JSON nested too deeply";
        case JsonInputError::duplicate_key: return "JSON object with a duplicate key";
    }
    return "not valid JSON";
}

}  // namespace turnout::routing
