#pragma once
/// Helpers of the Anthropic translation golden tests: fixtures live beside this file, and JSON
/// is compared parsed (member order and spacing do not matter; values and types do).

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::protocol::golden {

/// The fixture `name` under tests/unit/protocol/golden/; "" when missing (its test then fails).
inline std::string read(const std::string& name) {
    std::ifstream in(std::string(TURNOUT_SOURCE_DIR) + "/tests/unit/protocol/golden/" + name,
                     std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

inline rapidjson::Document parse(std::string_view text) {
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    return doc;
}

inline std::string pretty(const rapidjson::Value& value) {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    value.Accept(writer);
    return buffer.GetString();
}

/// Removes the clock-dependent `created` member after checking it is the current Unix time.
inline ::testing::AssertionResult strip_created(rapidjson::Value& doc) {
    const auto it = doc.IsObject() ? doc.FindMember("created") : rapidjson::Value::MemberIterator{};
    if (!doc.IsObject() || it == doc.MemberEnd() || !it->value.IsInt64()) {
        return ::testing::AssertionFailure() << "no integer `created` in " << pretty(doc);
    }
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const auto created = it->value.GetInt64();
    doc.RemoveMember(it);
    if (created > now || created < now - 60) {
        return ::testing::AssertionFailure()
               << "created " << created << " is not now (" << now << ")";
    }
    return ::testing::AssertionSuccess();
}

/// `actual` and `expected` parse to equal JSON; with `ignore_created`, `actual` must hold the
/// current time as `created`, which `expected` leaves out.
inline ::testing::AssertionResult json_equal(std::string_view actual, std::string_view expected,
                                             bool ignore_created = false) {
    rapidjson::Document got = parse(actual);
    rapidjson::Document want = parse(expected);
    if (got.HasParseError()) return ::testing::AssertionFailure() << "not JSON: " << actual;
    if (want.HasParseError()) return ::testing::AssertionFailure() << "bad fixture: " << expected;
    if (ignore_created) {
        if (auto created = strip_created(got); !created) return created;
    }
    if (got == want) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "actual:\n"
                                         << pretty(got) << "\nexpected:\n"
                                         << pretty(want);
}

/// The payloads of `data: ...\n\n` frames, in order; a frame of another shape fails the test.
inline std::vector<std::string> frames(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        const auto end = text.find("\n\n");
        const bool ok = text.substr(0, 6) == "data: " && end != std::string_view::npos;
        EXPECT_TRUE(ok) << "not an SSE data frame: " << text;
        if (!ok) break;
        out.emplace_back(text.substr(6, end - 6));
        text.remove_prefix(end + 2);
    }
    return out;
}

/// Non-empty lines of a fixture (JSON lines files).
inline std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) out.push_back(line);
    }
    return out;
}

}  // namespace turnout::protocol::golden
