#pragma once
/// The provider-adapter seam: what changes on the way back from an upstream, by the API the
/// provider speaks. The proxy asks the provider's Egress whether it serves a path, hands it
/// whole answers and SSE events, and relays what comes back, without knowing which API it is.
/// Today: OpenAI passthrough (usage read, bytes untouched) and Anthropic Messages translated
/// to OpenAI chat. Plain C++: no I/O.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "protocol/upstream_body.hpp"

namespace turnout::protocol {

/// A whole answer as the client gets it.
struct Answer {
    std::string body;
    bool json_content_type = false;  ///< the body changed shape: set Content-Type to JSON
    bool unusable = false;           ///< a 200 that cannot be translated: a protocol failure (502)
    std::string problem;             ///< unusable: why
    Usage usage;                     ///< what the answer reports (zeros when nothing)
    std::optional<std::string> speed;  ///< Anthropic fast mode (`usage.speed`), for the log
};

/// One streamed answer's events, on their way to the client. One per stream; not thread-safe.
class EventRelay {
  public:
    virtual ~EventRelay() = default;
    /// One complete SSE event (as SseSplitter::next_event returns it) -> the text for the
    /// client (zero or more events).
    virtual std::string on_event(std::string_view event) = 0;
    /// The stream failed in-band (an error event or bad data): the last text returned ended
    /// with the client's error event; the caller ends the stream.
    virtual bool failed() const { return false; }
    virtual Usage usage() const = 0;
    virtual std::optional<std::string> speed() const { return std::nullopt; }
};

struct StreamContext {
    std::string request_id;
    std::string model_for_client;  ///< the target's model name
    bool include_usage = false;    ///< the client asked for `stream_options.include_usage`
};

class Egress {
  public:
    virtual ~Egress() = default;
    /// Whether this provider serves the client's API path (e.g. "/chat/completions").
    virtual bool serves(std::string_view suffix) const = 0;
    /// A whole (non-streamed) answer with its upstream status.
    virtual Answer answer(unsigned status, std::string body, std::string_view request_id,
                          std::string_view model_for_client) const = 0;
    virtual std::unique_ptr<EventRelay> relay(StreamContext context) const = 0;
};

/// The adapter of a provider kind (static: adapters hold no state).
const Egress& egress_for(config::ProviderKind kind);

}  // namespace turnout::protocol
