#pragma once
/// The one non-cryptographic byte hash: 64-bit FNV-1a. Routing's stable per-request decisions
/// (routing/sampling.cpp) and the simulator's deterministic answers are built on it; their
/// results are pinned by tests, so the constants never change. Plain C++, constexpr.

#include <cstdint>
#include <string_view>

namespace turnout::base {

/// The FNV-1a offset basis: the hash of no bytes.
inline constexpr std::uint64_t kFnv1aOffset = 0xcbf29ce484222325ull;

/// 64-bit FNV-1a of `bytes`, continuing from `hash`: fnv1a(b, fnv1a(a)) == fnv1a(a + b).
/// FNV alone clusters on short inputs; mix the result before taking a share of its range.
constexpr std::uint64_t fnv1a(std::string_view bytes, std::uint64_t hash = kFnv1aOffset) {
    for (const char c : bytes) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3ull;
    }
    return hash;
}

// The published test vectors.
static_assert(fnv1a("") == 0xcbf29ce484222325ull);
static_assert(fnv1a("a") == 0xaf63dc4c8601ec8cull);
static_assert(fnv1a("foobar") == 0x85944171f73967e8ull);

}  // namespace turnout::base
