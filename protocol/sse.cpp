#include "protocol/sse.hpp"

namespace turnout::protocol {
namespace {

// A small consumed prefix stays put: dropping it would cost a memmove per event and save little.
constexpr std::size_t kCompactMinBytes = 4096;

struct EventScan {
    std::optional<std::size_t> end;  // one past the blank line that ends the event
    std::size_t resume_at = 0;       // where the next scan starts when there is no end yet
};

// Looks for the blank line ending the event that starts at `begin`, examining bytes from `from`
// on: the caller guarantees [begin, from) holds none, so each byte is examined once (twice for
// a CR that ends the buffer). Whether a byte starts a line is read off the byte before it, so
// nothing else needs remembering between calls.
EventScan scan_event(std::string_view buf, std::size_t begin, std::size_t from) {
    std::size_t i = from;
    while ((i = buf.find_first_of("\r\n", i)) != std::string_view::npos) {
        const char prev = i > begin ? buf[i - 1] : '\n';  // the event starts on a fresh line
        if (buf[i] == '\n' && prev == '\r') {  // the LF of a CRLF already counted at the CR
            ++i;
            continue;
        }
        if (prev != '\n' && prev != '\r') {  // ends a non-empty line
            ++i;
            continue;
        }
        if (buf[i] == '\n') return {i + 1, 0};
        // A CR blank line may be the first half of CRLF: wait for the next byte, otherwise its
        // LF would start the next event and the split would depend on read boundaries.
        if (i + 1 == buf.size()) return {std::nullopt, i};
        return {buf[i + 1] == '\n' ? i + 2 : i + 1, 0};
    }
    return {std::nullopt, buf.size()};
}

}  // namespace

void SseSplitter::feed(std::string_view bytes) {
    // After a protocol error the stream is dead; keeping its bytes would only grow memory.
    if (overflowed_) return;
    const std::size_t pending = buffer_.size() - consumed_;
    // Compacting only when the consumed prefix is at least as large as the tail that must move
    // keeps the total cost linear: every move is paid for by consumed bytes that leave for good.
    if (pending == 0) {
        buffer_.clear();
        consumed_ = 0;
        scan_from_ = 0;
    } else if (consumed_ >= kCompactMinBytes && consumed_ >= pending) {
        buffer_.erase(0, consumed_);
        scan_from_ -= consumed_;
        consumed_ = 0;
    }
    buffer_.append(bytes);
}

std::optional<std::string> SseSplitter::next_event() {
    if (overflowed_) return std::nullopt;
    const EventScan scan = scan_event(buffer_, consumed_, scan_from_);
    // A complete event is measured too, so the verdict does not depend on whether it arrived in
    // one read or in many.
    const std::size_t event_bytes = scan.end ? *scan.end - consumed_ : pending_bytes();
    if (event_bytes > max_event_bytes_) {
        overflowed_ = true;
        buffer_.clear();
        buffer_.shrink_to_fit();
        consumed_ = 0;
        scan_from_ = 0;
        return std::nullopt;
    }
    if (!scan.end) {
        scan_from_ = scan.resume_at;
        return std::nullopt;
    }
    std::string event = buffer_.substr(consumed_, event_bytes);
    consumed_ = *scan.end;
    scan_from_ = *scan.end;
    return event;
}

std::string sse_event_data(std::string_view event) {
    std::string data;
    bool any = false;
    while (!event.empty()) {
        const auto eol = event.find_first_of("\r\n");
        const auto line = event.substr(0, eol);
        if (eol == std::string_view::npos) {
            event = {};
        } else {
            const bool crlf =
                event[eol] == '\r' && eol + 1 < event.size() && event[eol + 1] == '\n';
            event.remove_prefix(eol + (crlf ? 2 : 1));
        }
        if (line.empty()) break;  // the blank line ends the event
        // Per the WHATWG algorithm: a line without a colon is a field name with an empty value,
        // a leading colon is a comment, and one space after the colon is not part of the value.
        const auto colon = line.find(':');
        if (line.substr(0, colon) != "data") continue;
        auto value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (any) data += '\n';
        data += value;
        any = true;
    }
    return data;
}

}  // namespace turnout::protocol
