// base/json_input.hpp's parse_json_input, the one reader of outside JSON, with every option
// combination and two depth bounds. After a successful parse the document is serialised with
// RapidJSON's (recursive) Writer and Accept: the depth bound is what keeps that recursion
// safe, so the document must be within the bound, serialise, and parse again the same way.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/json_depth.hpp"
#include "base/json_input.hpp"

using turnout::base::JsonInputError;
using turnout::base::JsonInputOptions;

namespace {

bool serialise(const rapidjson::Document& doc, rapidjson::StringBuffer& out, bool lenient) {
    if (lenient) {
        rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                          rapidjson::CrtAllocator, rapidjson::kWriteNanAndInfFlag>
            writer(out);
        return doc.Accept(writer);
    }
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    return doc.Accept(writer);
}

void check(std::string_view text, const JsonInputOptions& options) {
    rapidjson::Document doc;
    const auto result = turnout::base::parse_json_input(text, doc, options);
    if (!result) {
        if (!doc.IsNull()) std::abort();
        if (result.offset > text.size()) std::abort();
        if (!options.reject_duplicate_keys &&
            result.error == turnout::base::JsonInputError::duplicate_key) {
            std::abort();
        }
        return;
    }
    if (!turnout::base::json_within_depth(doc, options.max_depth)) std::abort();
    rapidjson::StringBuffer out;
    if (!serialise(doc, out, options.lenient)) std::abort();
    const std::string_view written(out.GetString(), out.GetSize());
    rapidjson::Document again;
    if (!turnout::base::parse_json_input(written, again, options)) std::abort();
    // With exact number conversion, writing again gives the same text (NaN compares unequal
    // as a value, so the texts are compared).
    if (options.full_precision) {
        rapidjson::StringBuffer out_again;
        if (!serialise(again, out_again, options.lenient)) std::abort();
        if (written != std::string_view(out_again.GetString(), out_again.GetSize())) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const int depth : {turnout::base::kMaxJsonDepth, 3}) {
        for (const bool duplicates : {true, false}) {
            for (const bool lenient : {false, true}) {
                for (const bool precise : {false, true}) {
                    JsonInputOptions options;
                    options.max_depth = depth;
                    options.reject_duplicate_keys = duplicates;
                    options.lenient = lenient;
                    options.full_precision = precise;
                    check(text, options);
                }
            }
        }
    }
    return 0;
}
