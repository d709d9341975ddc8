#include "routing/sampling.hpp"

#include "base/hash.hpp"

namespace turnout::routing {
namespace {

std::uint64_t finalise(std::uint64_t hash) {
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdull;
    hash ^= hash >> 33;
    hash *= 0xc4ceb9fe1a85ec53ull;
    hash ^= hash >> 33;
    return hash;
}

}  // namespace

std::uint64_t stable_hash(std::string_view text) { return finalise(base::fnv1a(text)); }

double stable_unit(std::string_view request_id, std::string_view salt) {
    // The salt is hashed in before the id (with a separator byte), not XORed afterwards:
    // XOR with a constant would make decisions under two salts perfectly correlated.
    std::uint64_t hash = base::fnv1a(salt);
    hash = base::fnv1a(std::string_view("\x1f", 1), hash);
    hash = finalise(base::fnv1a(request_id, hash));
    return static_cast<double>(hash >> 11) * 0x1.0p-53;  // the top 53 bits: exact in a double
}

bool sampled(std::string_view request_id, double rate, std::string_view salt) {
    if (!(rate > 0.0)) return false;  // also NaN
    if (rate >= 1.0) return true;
    return stable_unit(request_id, salt) < rate;
}

}  // namespace turnout::routing
