#include "routing/keys.hpp"

#include <cstdint>
#include <cstdlib>

namespace turnout::routing {
namespace {

// The helpers below compute with masks instead of `if`s and comparisons so that the work does
// not depend on secret data. Sizes are far below 2^63, which the `>> 63` tricks rely on.

/// 1 when `x` is 0, else 0.
std::uint64_t is_zero(std::uint64_t x) { return 1 ^ ((x | (0 - x)) >> 63); }

/// All ones when a < b, else 0.
std::uint64_t less_mask(std::uint64_t a, std::uint64_t b) { return 0 - ((a - b) >> 63); }

/// 1 when the strings are equal, else 0. `secret` is never empty. The loop runs over the
/// presented token, which the client chose anyway, reading the secret's byte at the same index
/// or, past its end, its first byte masked to 0, so neither the secret's length nor the
/// position of the first difference changes the running time.
std::uint64_t equal_in_constant_time(std::string_view secret, std::string_view presented) {
    const std::uint64_t secret_size = secret.size();
    // volatile: the compiler may neither stop the loop early once a difference is seen nor
    // turn the accumulation into a comparison with an early exit.
    volatile std::uint64_t difference = secret_size ^ presented.size();
    for (std::size_t i = 0; i < presented.size(); ++i) {
        const std::uint64_t in_secret = less_mask(i, secret_size);
        const auto secret_byte = static_cast<unsigned char>(secret[i & in_secret]) & in_secret;
        difference = difference | (secret_byte ^ static_cast<unsigned char>(presented[i]));
    }
    return is_zero(difference);
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    return text;
}

}  // namespace

bool constant_time_equal(std::string_view secret, std::string_view presented) {
    if (secret.empty()) return presented.empty();
    return equal_in_constant_time(secret, presented) == 1;
}

std::optional<std::string> process_env(const std::string& name) {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
}

KeyRing::KeyRing(const config::Config& config, const EnvLookup& env)
    : enabled_(!config.keys.empty()) {
    for (const auto& key : config.keys) {
        auto secret = env(key.key_env);
        if (!secret || secret->empty()) continue;
        keys_.push_back(Key{key.name, std::move(*secret)});
    }
}

std::optional<std::string_view> KeyRing::authenticate(std::string_view presented_token) const {
    // No secret is empty, so an empty token never matches; answering at once reveals nothing.
    if (presented_token.empty()) return std::nullopt;
    std::uint64_t found = 0;  // 1 + the index of the first matching key; 0 = none
    for (std::size_t i = 0; i < keys_.size(); ++i) {
        const std::uint64_t take =
            equal_in_constant_time(keys_[i].secret, presented_token) & is_zero(found);
        found |= (0 - take) & (i + 1);
    }
    if (found == 0) return std::nullopt;
    return std::string_view(keys_[found - 1].name);
}

std::string_view bearer_token(std::string_view authorization_header_value) {
    constexpr std::string_view kScheme = "bearer";
    const std::string_view value = trim(authorization_header_value);
    if (value.size() <= kScheme.size() || !is_space(value[kScheme.size()])) return {};
    for (std::size_t i = 0; i < kScheme.size(); ++i) {
        const char c = value[i];
        const char lowered = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        if (lowered != kScheme[i]) return {};
    }
    return trim(value.substr(kScheme.size()));
}

}  // namespace turnout::routing
