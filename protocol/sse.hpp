#pragma once
/// Server-Sent Events framing: splits a byte stream into whole events at blank lines,
/// whatever the TCP read boundaries were. Plain C++.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::protocol {

class SseSplitter {
  public:
    explicit SseSplitter(std::size_t max_event_bytes = 1 << 20)
        : max_event_bytes_(max_event_bytes) {}

    /// Appends bytes as read from the upstream.
    void feed(std::string_view bytes);

    /// The next complete event including its terminating blank line ("\n\n", "\r\n\r\n" or
    /// "\r\r"), exactly as received; nullopt until one is complete.
    std::optional<std::string> next_event();

    /// True once the pending partial event exceeded max_event_bytes (a protocol error).
    bool overflowed() const { return overflowed_; }

    /// Bytes received but not yet returned as an event (a partial event).
    std::size_t pending_bytes() const { return buffer_.size() - consumed_; }

  private:
    std::string buffer_;
    std::size_t consumed_ = 0;
    std::size_t scan_from_ = 0;
    std::size_t max_event_bytes_;
    bool overflowed_ = false;
};

/// The `data:` payload of one event (several data lines joined by '\n'); "" when none.
std::string sse_event_data(std::string_view event);

}  // namespace turnout::protocol
