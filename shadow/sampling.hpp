#pragma once
/// Which requests are mirrored: a decision stable per request id, so a client retrying with
/// the same x-request-id gets the same answer, and replicas agree without coordination.

#include <cstdint>
#include <string_view>

namespace turnout::shadow {

/// 64-bit FNV-1a followed by a murmur-style finaliser (FNV alone clusters on short ids).
std::uint64_t stable_hash(std::string_view text);

/// True for about `rate` (0..1) of all request ids; always false at 0, always true at 1.
/// `salt` separates independent decisions on the same id (e.g. shadow vs. weighted split).
bool sampled(std::string_view request_id, double rate, std::string_view salt = {});

}  // namespace turnout::shadow
