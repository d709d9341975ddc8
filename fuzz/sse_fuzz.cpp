// SseSplitter with the stream split at points the input chooses, compared with the same stream
// fed at once (events must not depend on TCP read boundaries), plus sse_event_data on each
// event. Input: [max-event selector byte][split lengths from the tail][stream bytes].
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/sse.hpp"

namespace {

struct Split {
    std::vector<std::string> events;
    bool overflowed = false;
    std::size_t pending = 0;
};

void drain(turnout::protocol::SseSplitter& splitter, Split& out) {
    while (auto event = splitter.next_event()) {
        const std::string data = turnout::protocol::sse_event_data(*event);
        if (data.size() > event->size()) std::abort();
        out.events.push_back(std::move(*event));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider input(data, size);
    // Small limits exercise the overflow path; 0 means the gateway's default (1 MiB).
    const auto limit_choice = input.ConsumeIntegral<std::uint8_t>();
    const std::size_t max_event = limit_choice == 0 ? std::size_t{1} << 20 : limit_choice * 4u;
    std::vector<std::size_t> cuts;
    const auto cut_count = input.ConsumeIntegralInRange<std::size_t>(0, 16);
    for (std::size_t i = 0; i < cut_count; ++i) {
        cuts.push_back(input.ConsumeIntegralInRange<std::size_t>(0, 64));
    }
    const std::string stream = input.ConsumeRemainingBytesAsString();

    Split whole;
    turnout::protocol::SseSplitter at_once(max_event);
    at_once.feed(stream);
    drain(at_once, whole);
    whole.overflowed = at_once.overflowed();
    whole.pending = at_once.pending_bytes();

    Split pieces;
    turnout::protocol::SseSplitter split(max_event);
    std::size_t at = 0;
    for (std::size_t i = 0; at < stream.size(); ++i) {
        // Cut lengths cycle; 0 feeds an empty read (Beast can report one).
        const std::size_t n =
            cuts.empty() ? 1 : std::min(cuts[i % cuts.size()], stream.size() - at);
        split.feed(std::string_view(stream).substr(at, n));
        at += n;
        drain(split, pieces);
        if (!cuts.empty() && i > stream.size() * 2 + 64) break;  // all-zero cuts
    }
    if (at < stream.size()) {
        split.feed(std::string_view(stream).substr(at));
        drain(split, pieces);
    }
    pieces.overflowed = split.overflowed();
    pieces.pending = split.pending_bytes();

    if (whole.events != pieces.events || whole.overflowed != pieces.overflowed) std::abort();
    if (!whole.overflowed && whole.pending != pieces.pending) std::abort();
    if (!whole.overflowed) {
        // Every byte is in exactly one event or still pending, in order.
        std::string joined;
        for (const auto& event : whole.events) {
            if (event.size() > max_event) std::abort();
            joined += event;
        }
        if (joined.size() + whole.pending != stream.size() || !stream.starts_with(joined)) {
            std::abort();
        }
    }
    return 0;
}
