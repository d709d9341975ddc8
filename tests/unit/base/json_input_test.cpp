// The one reader of outside JSON: iterative, nesting bounded, duplicate keys refused.

#include "base/json_input.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

namespace turnout::base {
namespace {

std::string nested(int depth) {
    return R"({"model":"m","x":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

TEST(JsonInput, ParsesAnOrdinaryObject) {
    rapidjson::Document doc;
    const auto result =
        base::parse_json_input(R"({"model":"m","messages":[{"role":"user"}]})", doc);
    ASSERT_TRUE(result);
    ASSERT_TRUE(doc.IsObject());
    EXPECT_STREQ(doc["model"].GetString(), "m");
    EXPECT_STREQ(doc["messages"][0]["role"].GetString(), "user");
}

TEST(JsonInput, BoundsTheDepthWithoutRecursing) {
    rapidjson::Document doc;
    // 127 arrays inside the top object: 128 levels, the bound itself.
    EXPECT_TRUE(base::parse_json_input(nested(base::kMaxJsonDepth - 1), doc));
    const auto deep = base::parse_json_input(nested(base::kMaxJsonDepth), doc);
    EXPECT_EQ(deep.error, base::JsonInputError::too_deep);
    EXPECT_TRUE(doc.IsNull());
    // The body of the crash report: 100,000 levels, refused, no stack overflow.
    EXPECT_EQ(base::parse_json_input(nested(100000), doc).error, base::JsonInputError::too_deep);
    EXPECT_EQ(base::check_json_input(nested(100000)).error, base::JsonInputError::too_deep);
    base::JsonInputOptions shallow;
    shallow.max_depth = 2;
    EXPECT_TRUE(base::parse_json_input(R"({"a":[1]})", doc, shallow));
    EXPECT_EQ(base::parse_json_input(R"({"a":[[1]]})", doc, shallow).error,
              base::JsonInputError::too_deep);
}

TEST(JsonInput, RefusesDuplicateKeysAtAnyLevel) {
    rapidjson::Document doc;
    EXPECT_EQ(base::parse_json_input(R"({"model":"m","model":"fo"})", doc).error,
              base::JsonInputError::duplicate_key);
    EXPECT_TRUE(doc.IsNull());
    EXPECT_EQ(base::parse_json_input(R"({"a":{"b":1,"c":2,"b":3}})", doc).error,
              base::JsonInputError::duplicate_key);
    EXPECT_EQ(base::parse_json_input(R"([{"k":1},{"k":2,"k":3}])", doc).error,
              base::JsonInputError::duplicate_key);
    // The same key in sibling or nested objects is fine.
    EXPECT_TRUE(base::parse_json_input(R"({"a":{"k":1},"b":{"k":2},"k":{"k":{"k":3}}})", doc));
    // Escapes are compared after decoding: "\u006d" is "m".
    EXPECT_EQ(base::parse_json_input(R"({"m":1,"\u006d":2})", doc).error,
              base::JsonInputError::duplicate_key);
    base::JsonInputOptions tolerant;
    tolerant.reject_duplicate_keys = false;
    EXPECT_TRUE(base::parse_json_input(R"({"model":"m","model":"fo"})", doc, tolerant));
}

TEST(JsonInput, FindsADuplicateInALargeObject) {
    std::string many = "{";
    for (int i = 0; i < 5000; ++i)
        many += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
    rapidjson::Document doc;
    EXPECT_TRUE(base::parse_json_input(many.substr(0, many.size() - 1) + "}", doc));
    EXPECT_EQ(doc.MemberCount(), 5000u);
    EXPECT_EQ(base::parse_json_input(many + "\"k4321\":0}", doc).error,
              base::JsonInputError::duplicate_key);
}

TEST(JsonInput, SyntaxErrorsAndLenientDialect) {
    rapidjson::Document doc;
    EXPECT_EQ(base::parse_json_input("", doc).error, base::JsonInputError::syntax);
    EXPECT_EQ(base::parse_json_input("{", doc).error, base::JsonInputError::syntax);
    EXPECT_EQ(base::parse_json_input(R"({"a":1} x)", doc).error, base::JsonInputError::syntax);
    const std::string loose = "{\"score\": 97, // sure\n \"pass\": true,}";
    EXPECT_EQ(base::parse_json_input(loose, doc).error, base::JsonInputError::syntax);
    base::JsonInputOptions lenient;
    lenient.lenient = true;
    ASSERT_TRUE(base::parse_json_input(loose, doc, lenient));
    EXPECT_EQ(doc["score"].GetInt(), 97);
    EXPECT_TRUE(base::check_json_input(loose, lenient));
    EXPECT_FALSE(base::check_json_input(loose));
}

TEST(JsonInput, DescribesEachError) {
    EXPECT_EQ(describe(base::JsonInputError::too_deep), "JSON nested too deeply");
    EXPECT_EQ(describe(base::JsonInputError::duplicate_key), "JSON object with a duplicate key");
    EXPECT_EQ(describe(base::JsonInputError::syntax), "not valid JSON");
}

}  // namespace
}  // namespace turnout::base
