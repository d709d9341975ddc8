// Numbers just above DBL_MAX (found by fuzz/json_input_fuzz.cpp; corpus/json_input/
// number_above_dbl_max): RapidJSON 1.1.0 reads them as inf (or NaN with full precision), which
// a strict document must not hold: re-serialising it (a model rewrite) stopped half way.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <limits>

#include "base/json_input.hpp"

namespace turnout::base {
namespace {

TEST(JsonInputNumbers, RefusesNumbersThatOverflowADouble) {
    for (const bool precise : {false, true}) {
        for (const char* text : {R"({"model":"m","temperature":1.8e308})", "[7e308]", "-1.8e308",
                                 "17976931348623159e292"}) {
            rapidjson::Document doc;
            base::JsonInputOptions options;
            options.full_precision = precise;
            const auto result = base::parse_json_input(text, doc, options);
            EXPECT_EQ(result.error, base::JsonInputError::syntax) << text << " precise=" << precise;
            EXPECT_TRUE(doc.IsNull());
        }
    }
}

TEST(JsonInputNumbers, KeepsTheLargestFiniteDoubleAndWritesItBack) {
    rapidjson::Document doc;
    ASSERT_TRUE(base::parse_json_input("[1.7976931348623157e308,1e-400,-0.0]", doc));
    EXPECT_EQ(doc[0].GetDouble(), 1.7976931348623157e308);
    EXPECT_EQ(doc[1].GetDouble(), 0.0);  // underflow is zero, as before
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    EXPECT_TRUE(doc.Accept(writer));
}

TEST(JsonInputNumbers, FullPrecisionTypesNumbersAsTheDefaultReaderDoes) {
    // Full precision converts the text itself: the same types, exact values.
    const char* text =
        "[0,-0,1,-1,2147483647,-2147483648,-2147483649,4294967295,4294967296,"
        "9223372036854775807,-9223372036854775808,-9223372036854775809,18446744073709551615,"
        "18446744073709551616,0.1,-2.5e-3,1E2,1e-400,-1e-400,0.30000000000000004]";
    rapidjson::Document plain;
    rapidjson::Document precise;
    ASSERT_TRUE(base::parse_json_input(text, plain));
    base::JsonInputOptions options;
    options.full_precision = true;
    ASSERT_TRUE(base::parse_json_input(text, precise, options));
    ASSERT_EQ(plain.Size(), precise.Size());
    for (rapidjson::SizeType i = 0; i < plain.Size(); ++i) {
        EXPECT_EQ(plain[i].GetType(), precise[i].GetType()) << i;
        EXPECT_EQ(plain[i].IsInt(), precise[i].IsInt()) << i;
        EXPECT_EQ(plain[i].IsUint(), precise[i].IsUint()) << i;
        EXPECT_EQ(plain[i].IsInt64(), precise[i].IsInt64()) << i;
        EXPECT_EQ(plain[i].IsUint64(), precise[i].IsUint64()) << i;
        EXPECT_EQ(plain[i].IsDouble(), precise[i].IsDouble()) << i;
        EXPECT_EQ(plain[i].GetDouble(), precise[i].GetDouble()) << i;
    }
    options.lenient = true;
    ASSERT_TRUE(base::parse_json_input("[NaN,-Infinity,Infinity,1,]", precise, options));
    EXPECT_TRUE(std::isnan(precise[0].GetDouble()));
    EXPECT_EQ(precise[1].GetDouble(), -std::numeric_limits<double>::infinity());
    EXPECT_EQ(precise[2].GetDouble(), std::numeric_limits<double>::infinity());
    EXPECT_TRUE(precise[3].IsUint());
}

TEST(JsonInputNumbers, LenientInputMayStillSpellInfinity) {
    // Judges write NaN and Infinity; the verdict parser checks the score is finite itself.
    rapidjson::Document doc;
    base::JsonInputOptions options;
    options.lenient = true;
    ASSERT_TRUE(base::parse_json_input("[Infinity,1.8e308,NaN]", doc, options));
    EXPECT_TRUE(std::isinf(doc[0].GetDouble()));
    EXPECT_TRUE(std::isinf(doc[1].GetDouble()));
    EXPECT_TRUE(std::isnan(doc[2].GetDouble()));
}

}  // namespace
}  // namespace turnout::base
