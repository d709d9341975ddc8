#include "sim/degraded.hpp"

#include <bit>
#include <cstdint>
#include <string_view>

#include "base/hash.hpp"

namespace turnout::sim {
namespace {

std::uint64_t mix64(std::uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// A hash of what a JSON value means rather than of its bytes: whitespace, string escapes,
// number spelling and member order leave it unchanged, so a prompt the gateway re-serialises
// (its shadow copy of a request) is treated like the client's original. Recursion is bounded
// by the parser's, which has already walked the same document.
std::uint64_t json_hash(const rapidjson::Value& value) {
    switch (value.GetType()) {
        case rapidjson::kNullType:
            return mix64(1);
        case rapidjson::kFalseType:
            return mix64(2);
        case rapidjson::kTrueType:
            return mix64(3);
        case rapidjson::kStringType:
            return mix64(base::fnv1a({value.GetString(), value.GetStringLength()}) ^ 4);
        case rapidjson::kNumberType: {
            const double number = value.GetDouble();
            return mix64(std::bit_cast<std::uint64_t>(number == 0 ? 0.0 : number) ^ 5);
        }
        case rapidjson::kArrayType: {
            std::uint64_t hash = mix64(6);
            for (const auto& item : value.GetArray()) {
                hash = mix64(hash ^ json_hash(item));
            }
            return hash;
        }
        case rapidjson::kObjectType: {
            std::uint64_t sum = 0;  // a sum, so the members' order does not count
            for (const auto& member : value.GetObject()) {
                const std::string_view name(member.name.GetString(), member.name.GetStringLength());
                sum += mix64(base::fnv1a(name) ^ mix64(json_hash(member.value)));
            }
            return mix64(sum ^ 7);
        }
    }
    return 0;
}

}  // namespace

bool degraded_prompt(const rapidjson::Value& request, double rate) {
    if (!(rate > 0)) {
        return false;
    }
    const auto messages = request.FindMember("messages");
    const std::uint64_t hash =
        messages == request.MemberEnd() ? mix64(0) : json_hash(messages->value);
    return static_cast<double>(hash >> 11) * 0x1p-53 < rate;
}

}  // namespace turnout::sim
