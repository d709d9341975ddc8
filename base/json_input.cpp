#include "base/json_input.hpp"

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

namespace turnout::base {
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
    bool Double(double d) {
        // RapidJSON 1.1.0 reads a number just above DBL_MAX whose exponent is still <= 308
        // (1.8e308, 7e308) as inf or NaN instead of failing; strict JSON cannot carry those,
        // and a writer asked to emit one stops half way through the document.
        if (!options_.lenient && !std::isfinite(d)) {
            error_ = JsonInputError::syntax;
            return false;
        }
        return target_.Double(d);
    }
    /// Full precision only (the reader then hands over each number's text): RapidJSON 1.1.0's
    /// exact conversion returns garbage for numbers just above DBL_MAX (7e308 gives -0,
    /// 1.8e308 NaN), so std::from_chars, exact and range-checked, converts here instead, typed
    /// as RapidJSON types numbers.
    bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
        const std::string_view text(str, length);
        const char* const end = str + length;
        if (text.find_first_of(".eE") == std::string_view::npos) {
            if (text.find_first_of("NI") != std::string_view::npos) {  // lenient NaN, Infinity
                if (text.find('N') != std::string_view::npos) {
                    return Double(std::numeric_limits<double>::quiet_NaN());
                }
                const double inf = std::numeric_limits<double>::infinity();
                return Double(text.front() == '-' ? -inf : inf);
            }
            if (text.front() == '-') {
                std::int64_t i = 0;
                if (std::from_chars(str, end, i).ec == std::errc{}) {
                    return i >= std::numeric_limits<std::int32_t>::min()
                               ? target_.Int(static_cast<int>(i))
                               : target_.Int64(i);
                }
            } else {
                std::uint64_t u = 0;
                if (std::from_chars(str, end, u).ec == std::errc{}) {
                    return u <= std::numeric_limits<std::uint32_t>::max()
                               ? target_.Uint(static_cast<unsigned>(u))
                               : target_.Uint64(u);
                }
            }
        }
        double d = 0;
        const auto [ptr, ec] = std::from_chars(str, end, d);
        if (ec == std::errc::result_out_of_range && !too_large(text)) {
            d = text.front() == '-' ? -0.0 : 0.0;  // underflow is zero, as RapidJSON reads it
        } else if (ec != std::errc{} || ptr != end) {
            error_ = JsonInputError::syntax;
            return false;
        }
        return Double(d);
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
    /// For a number std::from_chars found out of range: above the largest double (true) or
    /// below the smallest (false), from its decimal exponent.
    static bool too_large(std::string_view number) {
        const auto e = number.find_first_of("eE");
        long long exponent = 0;
        if (e != std::string_view::npos) {
            auto digits = number.substr(e + 1);
            const bool negative = !digits.empty() && digits.front() == '-';
            if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) {
                digits.remove_prefix(1);
            }
            for (const char c : digits) exponent = std::min(exponent * 10 + (c - '0'), 1000000LL);
            if (negative) exponent = -exponent;
        }
        const auto mantissa = number.substr(0, e);
        const auto first = mantissa.find_first_of("123456789");
        if (first == std::string_view::npos) return false;
        const auto point = std::min(mantissa.find('.'), mantissa.size());
        // The power of ten of the first significant digit, plus one.
        const long long position = first < point ? static_cast<long long>(point - first)
                                                 : -static_cast<long long>(first - point - 1);
        return position + exponent > 0;
    }

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
        // Exact conversion: the numbers come as text to RawNumber, which converts them.
        constexpr unsigned kPrecise = rapidjson::kParseNumbersAsStringsFlag;
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
        case JsonInputError::none:
            return "valid JSON";
        case JsonInputError::syntax:
            return "not valid JSON";
        case JsonInputError::too_deep:
            return "JSON nested too deeply";
        case JsonInputError::duplicate_key:
            return "JSON object with a duplicate key";
    }
    return "not valid JSON";
}

}  // namespace turnout::base
