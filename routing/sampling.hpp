#pragma once
/// Decisions stable per request id: a client retrying with the same x-request-id gets the same
/// answer (mirrored or not, which weighted target, which side of a ramp), and replicas agree
/// without coordination. Pure functions, safe from any thread.

#include <cstdint>
#include <string_view>

namespace turnout::routing {

/// 64-bit FNV-1a (base/hash.hpp) followed by a murmur-style finaliser (FNV alone clusters on
/// short ids).
std::uint64_t stable_hash(std::string_view text);

/// A uniform value in [0, 1) derived from `salt` and `request_id`. Different salts give
/// independent values for the same id (the salt is hashed in, not XORed afterwards).
double stable_unit(std::string_view request_id, std::string_view salt = {});

/// True for about `rate` (0..1) of all request ids; always false at 0 (or NaN), always true
/// at 1. `salt` separates independent decisions on the same id (e.g. shadow vs. weighted
/// split). For one salt a higher rate samples a superset of the ids a lower rate samples, so
/// raising a ramp share never moves an id back.
bool sampled(std::string_view request_id, double rate, std::string_view salt = {});

}  // namespace turnout::routing
