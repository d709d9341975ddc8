#include "protocol/framing.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace turnout::protocol {
namespace {

struct FramingCase {
    std::string name;
    unsigned version;
    std::vector<HeaderView> headers;
    bool ok;
    std::string reason_contains;  // which rule must have fired; "" when ok
};

std::ostream& operator<<(std::ostream& os, const FramingCase& c) { return os << c.name; }

class FramingTest : public ::testing::TestWithParam<FramingCase> {};

TEST_P(FramingTest, Verdict) {
    const FramingCase& c = GetParam();
    // Unrelated fields around the framing ones must not change the verdict.
    std::vector<HeaderView> headers{{"Host", "api.example"}, {"Content-Type", "application/json"}};
    headers.insert(headers.end(), c.headers.begin(), c.headers.end());
    headers.emplace_back("Accept", "text/event-stream");

    const FramingVerdict verdict = check_request_framing(c.version, headers);
    EXPECT_EQ(verdict.ok, c.ok) << verdict.reason;
    if (c.ok) {
        EXPECT_TRUE(verdict.reason.empty()) << verdict.reason;
    } else {
        EXPECT_FALSE(verdict.reason.empty());
        EXPECT_NE(verdict.reason.find(c.reason_contains), std::string::npos)
            << "reason: " << verdict.reason;
    }
}

const std::string kBoth = "both Content-Length and Transfer-Encoding";
const std::string kTeNotChunked = "not exactly chunked";
const std::string kTeTwice = "multiple Transfer-Encoding";
const std::string kTeHttp10 = "HTTP/1.0";
const std::string kClTwice = "multiple Content-Length";
const std::string kClInvalid = "invalid Content-Length";
const std::string kClTooLarge = "64 bits";

// clang-format off
const FramingCase kCases[] = {
    // No body framing at all (GET, or a body-less POST).
    {"no_framing_11", 11, {}, true, ""},
    {"no_framing_10", 10, {}, true, ""},

    // Content-Length: accepted.
    {"cl_zero", 11, {{"Content-Length", "0"}}, true, ""},
    {"cl_small", 11, {{"Content-Length", "5"}}, true, ""},
    {"cl_ows_spaces", 11, {{"Content-Length", " 5 "}}, true, ""},
    {"cl_ows_tabs", 11, {{"Content-Length", "\t42\t"}}, true, ""},
    {"cl_leading_zeros", 11, {{"Content-Length", "007"}}, true, ""},
    {"cl_uint64_max", 11, {{"Content-Length", "18446744073709551615"}}, true, ""},
    {"cl_lower_case_name", 11, {{"content-length", "12"}}, true, ""},
    {"cl_http10", 10, {{"Content-Length", "12"}}, true, ""},

    // Content-Length: rejected values.
    {"cl_empty", 11, {{"Content-Length", ""}}, false, kClInvalid},
    {"cl_only_ows", 11, {{"Content-Length", " \t "}}, false, kClInvalid},
    {"cl_plus", 11, {{"Content-Length", "+5"}}, false, kClInvalid},
    {"cl_minus", 11, {{"Content-Length", "-1"}}, false, kClInvalid},
    {"cl_list_equal", 11, {{"Content-Length", "5,5"}}, false, kClInvalid},
    {"cl_list_spaced", 11, {{"Content-Length", "5, 5"}}, false, kClInvalid},
    {"cl_hex", 11, {{"Content-Length", "0x10"}}, false, kClInvalid},
    {"cl_exponent", 11, {{"Content-Length", "1e3"}}, false, kClInvalid},
    {"cl_decimal", 11, {{"Content-Length", "5.0"}}, false, kClInvalid},
    {"cl_inner_space", 11, {{"Content-Length", "1 0"}}, false, kClInvalid},
    {"cl_trailing_cr", 11, {{"Content-Length", "5\r"}}, false, kClInvalid},
    {"cl_vertical_tab", 11, {{"Content-Length", "\v5"}}, false, kClInvalid},
    {"cl_arabic_digit", 11, {{"Content-Length", "\xd9\xa5"}}, false, kClInvalid},
    {"cl_upper_case_name_bad_value", 11, {{"CONTENT-LENGTH", "abc"}}, false, kClInvalid},
    {"cl_uint64_max_plus_one", 11, {{"Content-Length", "18446744073709551616"}}, false,
     kClTooLarge},
    {"cl_twenty_nines", 11, {{"Content-Length", "99999999999999999999"}}, false, kClTooLarge},
    {"cl_thirty_digits", 11, {{"Content-Length", "123456789012345678901234567890"}}, false,
     kClTooLarge},
    {"cl_overflow_then_junk", 11, {{"Content-Length", "99999999999999999999x"}}, false,
     kClInvalid},

    // Content-Length: more than one field, even when equal.
    {"cl_twice_equal", 11, {{"Content-Length", "5"}, {"Content-Length", "5"}}, false, kClTwice},
    {"cl_twice_equal_mixed_case", 11, {{"Content-Length", "5"}, {"content-LENGTH", "5"}}, false,
     kClTwice},
    {"cl_twice_different", 11, {{"Content-Length", "5"}, {"Content-Length", "6"}}, false,
     kClTwice},

    // Transfer-Encoding: accepted.
    {"te_chunked", 11, {{"Transfer-Encoding", "chunked"}}, true, ""},
    {"te_chunked_upper", 11, {{"Transfer-Encoding", "CHUNKED"}}, true, ""},
    {"te_chunked_mixed", 11, {{"transfer-encoding", "Chunked"}}, true, ""},
    {"te_chunked_ows", 11, {{"Transfer-Encoding", " \tchunked \t"}}, true, ""},

    // Transfer-Encoding: rejected values.
    {"te_empty", 11, {{"Transfer-Encoding", ""}}, false, kTeNotChunked},
    {"te_only_ows", 11, {{"Transfer-Encoding", "  "}}, false, kTeNotChunked},
    {"te_chunked_twice", 11, {{"Transfer-Encoding", "chunked, chunked"}}, false, kTeNotChunked},
    {"te_gzip_chunked", 11, {{"Transfer-Encoding", "gzip, chunked"}}, false, kTeNotChunked},
    {"te_chunked_param", 11, {{"Transfer-Encoding", "chunked;x=1"}}, false, kTeNotChunked},
    {"te_xchunked", 11, {{"Transfer-Encoding", "xchunked"}}, false, kTeNotChunked},
    {"te_chunked_suffix", 11, {{"Transfer-Encoding", "chunkedx"}}, false, kTeNotChunked},
    {"te_trailing_comma", 11, {{"Transfer-Encoding", "chunked,"}}, false, kTeNotChunked},
    {"te_identity", 11, {{"Transfer-Encoding", "identity"}}, false, kTeNotChunked},
    {"te_gzip", 11, {{"Transfer-Encoding", "gzip"}}, false, kTeNotChunked},
    {"te_vertical_tab", 11, {{"Transfer-Encoding", "\vchunked"}}, false, kTeNotChunked},
    {"te_upper_name_bad_value", 11, {{"TRANSFER-ENCODING", "gzip"}}, false, kTeNotChunked},

    // Transfer-Encoding: more than one field, or in HTTP/1.0.
    {"te_two_fields", 11, {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
     false, kTeTwice},
    {"te_two_fields_mixed_case", 11,
     {{"Transfer-Encoding", "gzip"}, {"transfer-encoding", "chunked"}}, false, kTeTwice},
    {"te_http10", 10, {{"Transfer-Encoding", "chunked"}}, false, kTeHttp10},

    // Both: rejected whatever the values and the case of the names.
    {"cl_and_te", 11, {{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}, false, kBoth},
    {"te_and_cl", 11, {{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}, false, kBoth},
    {"cl_and_te_case", 11, {{"content-length", "0"}, {"TRANSFER-ENCODING", "CHUNKED"}}, false,
     kBoth},
    {"cl_and_te_http10", 10, {{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}, false,
     kBoth},

    // Look-alike names are ordinary headers, not framing.
    {"lookalike_names", 11,
     {{"Content-Length-Extra", "abc"}, {"X-Transfer-Encoding", "gzip, chunked"},
      {"Content-Lengths", "5,5"}},
     true, ""},
    {"lookalike_with_real_cl", 11, {{"X-Content-Length", "7"}, {"Content-Length", "5"}}, true,
     ""},
};
// clang-format on

TEST(FramingHost, HttpOneOneNeedsExactlyOneHost) {
    EXPECT_TRUE(check_request_framing(11, {{"Host", "a"}}).ok);
    const auto missing = check_request_framing(11, {{"Content-Type", "application/json"}});
    EXPECT_FALSE(missing.ok);
    EXPECT_EQ(missing.status, 400u);
    EXPECT_NE(missing.reason.find("missing Host"), std::string::npos) << missing.reason;
    const auto twice = check_request_framing(11, {{"Host", "a"}, {"host", "b"}});
    EXPECT_FALSE(twice.ok);
    EXPECT_NE(twice.reason.find("multiple Host"), std::string::npos) << twice.reason;
    // HTTP/1.0 has no Host requirement, but two are still ambiguous.
    EXPECT_TRUE(check_request_framing(10, {}).ok);
    EXPECT_FALSE(check_request_framing(10, {{"Host", "a"}, {"Host", "a"}}).ok);
}

TEST(FramingVersion, OnlyHttpOneZeroAndOneOneAre505Free) {
    for (unsigned version : {9u, 12u, 19u, 20u, 30u}) {
        const auto verdict = check_request_framing(version, {{"Host", "a"}});
        EXPECT_FALSE(verdict.ok) << version;
        EXPECT_EQ(verdict.status, 505u) << version;
    }
    EXPECT_EQ(check_request_framing(11, {{"Host", "a"}, {"Content-Length", "x"}}).status, 400u);
}

INSTANTIATE_TEST_SUITE_P(Rules, FramingTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<FramingCase>& param) {
                             return param.param.name;
                         });

}  // namespace
}  // namespace turnout::protocol
