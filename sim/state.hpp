#pragma once
/// What the simulator's threads share: the settings from the command line, the counters, and
/// the last request received (for tests). Plain C++.
///
/// Thread safety: `SimState::settings` is immutable once the threads start, `stats` and
/// `degrade_rate` are atomics, `last` is guarded by `last_mutex` (never held across a
/// co_await). Lifetime: until the last session ends (sessions hold a shared_ptr).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::sim {

using Clock = std::chrono::steady_clock;

/// Faults planned for a request: by the command line, overridden by x-sim-* headers.
struct Faults {
    int status = 0;                  // 0: none; otherwise answered with the kind's error body
    std::int64_t reset_after = -1;   // content frames before a TCP reset; -1: never
    std::int64_t stream_error = -1;  // anthropic: deltas before an `error` event; -1: never
    bool hang = false;
    bool garbage = false;
};

/// The API the simulator speaks.
enum class Kind { openai, anthropic };

/// What /v1/chat/completions does: generate an answer, or judge a turnout judge prompt.
enum class Role { answer, judge };

/// How requests are answered (the listener's own options are in options.hpp).
struct Settings {
    Kind kind = Kind::openai;
    std::chrono::milliseconds ttft{0};
    double tps = 0;  // tokens per second; 0: instant
    std::size_t tokens = 16;
    std::vector<std::string> words;  // the answer text, cycled to reach `tokens`
    Faults faults;
    Role role = Role::answer;
    double degrade_rate = 0;  // the start value of SimState::degrade_rate
    bool judge_garbage = false;
    int judge_score = -1;  // -1: computed from the answers
};

struct Stats {
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> streams_started{0};
    std::atomic<std::uint64_t> streams_completed{0};
    std::atomic<std::uint64_t> streams_aborted{0};
    std::atomic<std::int64_t> active_streams{0};
    std::atomic<std::uint64_t> next_id{0};
    std::atomic<std::uint64_t> degraded_answers{0};
    std::atomic<std::uint64_t> judge_replies{0};
};

inline void bump(std::atomic<std::uint64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
}

/// Buffers grown by one huge request are released rather than kept for the connection's life.
inline constexpr std::size_t kKeptCapacity = 1024 * 1024;

/// One request as received. Its strings and header slots are reused from request to request,
/// so their capacity survives `clear()`.
struct RequestData {
    std::string method;
    std::string target;
    int version = 11;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::size_t header_count = 0;
    std::string body;

    void clear() {
        method.clear();
        target.clear();
        header_count = 0;
        if (body.capacity() > kKeptCapacity) {
            std::string().swap(body);
        }
        body.clear();
    }

    void add_header(std::string_view name, std::string_view value) {
        if (header_count == headers.size()) {
            headers.emplace_back();
        }
        auto& [lower_name, stored_value] = headers[header_count++];
        lower_name.assign(name);
        for (char& c : lower_name) {
            if (c >= 'A' && c <= 'Z') {
                c = static_cast<char>(c - 'A' + 'a');
            }
        }
        stored_value.assign(value);
    }

    std::string_view header(std::string_view lower_name) const {
        for (std::size_t i = 0; i < header_count; ++i) {
            if (headers[i].first == lower_name) {
                return headers[i].second;
            }
        }
        return {};
    }

    void assign_from(const RequestData& other) {
        clear();
        method.assign(other.method);
        target.assign(other.target);
        version = other.version;
        for (std::size_t i = 0; i < other.header_count; ++i) {
            add_header(other.headers[i].first, other.headers[i].second);
        }
        body.assign(other.body);
    }
};

/// Everything the threads share (see the thread safety note at the top).
struct SimState {
    Settings settings;
    Stats stats;
    std::atomic<double> degrade_rate{0};  // POST /_sim/config changes it at run time
    std::mutex last_mutex;
    RequestData last;
    bool has_last = false;
    std::vector<std::string> tool_preamble;  // anthropic: the text block before a tool_use
};

}  // namespace turnout::sim
