#pragma once
/// A small blocking HTTP/1.1 client over POSIX sockets for integration tests. Every read takes a
/// timeout (poll), so a misbehaving gateway fails a test instead of hanging it. No Beast: this
/// compiles in a second. Not thread-safe: one connection belongs to one thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::test {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

/// Request header fields in the order they are sent (names as given).
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr Millis kDefaultTimeout{10000};

struct HttpResponse {
    int status = 0;
    std::string version;  ///< "HTTP/1.1"
    std::string reason;
    std::multimap<std::string, std::string> headers;  ///< lower-cased names
    std::string body;                                 ///< de-chunked
    bool chunked = false;

    /// The first value of `name` (any case), "" when absent.
    std::string header(std::string_view name) const;
    bool has_header(std::string_view name) const;
    std::size_t header_count(std::string_view name) const;
};

std::string to_lower(std::string_view s);

/// Outcome of one read from the socket.
enum class ReadStatus { data, timeout, closed, error };

class RawConnection {
  public:
    /// Connects to 127.0.0.1:port (blocking connect, loopback). Check connected().
    explicit RawConnection(std::uint16_t port);
    ~RawConnection();
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    bool connected() const { return fd_ >= 0; }
    const std::string& error() const { return error_; }  ///< last error, for messages
    int fd() const { return fd_; }

    /// Writes all of `bytes`; false on error (EPIPE, ECONNRESET, timeout).
    bool send(std::string_view bytes, Millis timeout = kDefaultTimeout);

    /// Sends a request with Content-Length (when `body` is non-empty or the method is POST).
    bool send_request(std::string_view method, std::string_view target, const Headers& headers,
                      std::string_view body = {});

    /// Reads one whole response (Content-Length, chunked, or up to EOF when neither). Skips 1xx
    /// interim answers. nullopt on timeout or when the peer closed before a complete response.
    std::optional<HttpResponse> read_response(Millis timeout = kDefaultTimeout,
                                              bool head_request = false);

    /// Reads only the status line and header block (for streaming bodies, see SseStreamReader).
    std::optional<HttpResponse> read_head(Millis timeout = kDefaultTimeout);

    /// One read: buffered bytes first, else one recv() within `timeout`.
    ReadStatus read_some(std::string& out, Millis timeout);

    /// Reads (and discards) until the peer closes or resets the connection; true if it did
    /// within `timeout`.
    bool wait_closed_by_peer(Millis timeout = kDefaultTimeout);

    /// Bytes received but not consumed by a parse.
    const std::string& buffered() const { return buffer_; }
    std::string take_buffered();
    void consume(std::size_t n) { buffer_.erase(0, n); }

    /// Reads more bytes into the buffer; used by the parsers.
    ReadStatus fill(Clock::time_point deadline);

    void shutdown_write();
    /// Closes the socket; with `reset`, SO_LINGER 0 makes it an RST instead of a FIN.
    void close(bool reset = false);

  private:
    bool read_body(HttpResponse& response, Clock::time_point deadline, bool head_request);
    bool read_chunked(std::string& out, Clock::time_point deadline);
    bool read_line(std::string& line, Clock::time_point deadline);

    int fd_ = -1;
    std::string buffer_;
    std::string error_;
};

/// Opens a connection, sends one request, reads one response, closes. nullopt on any failure.
std::optional<HttpResponse> http_request(std::uint16_t port, std::string_view method,
                                         std::string_view target, const Headers& headers = {},
                                         std::string_view body = {},
                                         Millis timeout = kDefaultTimeout);

/// True when a TCP connect to 127.0.0.1:port is refused right now.
bool connect_refused(std::uint16_t port);

/// Reads an SSE response as it arrives: the head, then one event at a time from the (chunked)
/// body. Frames are observable while the server is still sending.
class SseStreamReader {
  public:
    enum class State { open, ended, closed, timeout, error };

    explicit SseStreamReader(RawConnection& connection) : connection_(connection) {}

    /// Reads the response head. Call once before next_event().
    std::optional<HttpResponse> read_head(Millis timeout = kDefaultTimeout);

    /// The `data:` payload of the next event that has one (events without data lines, such as
    /// comments, are skipped). nullopt at the end of the body (state() == ended), when the
    /// connection closed before it (closed), on timeout or error.
    std::optional<std::string> next_event(Millis timeout = kDefaultTimeout);

    /// Reads events until the body ends; returns their data payloads.
    std::vector<std::string> read_all(Millis timeout = kDefaultTimeout);

    State state() const { return state_; }
    const std::string& last_raw_event() const { return last_raw_event_; }
    /// Every body byte decoded so far (for failure messages).
    const std::string& body_so_far() const { return body_; }

  private:
    /// Moves decoded body bytes into pending_; false when nothing more can come.
    bool decode_more(Clock::time_point deadline);

    RawConnection& connection_;
    bool chunked_ = false;
    bool has_length_ = false;
    std::uint64_t remaining_length_ = 0;
    std::uint64_t chunk_remaining_ = 0;
    bool in_chunk_ = false;
    std::string pending_;  ///< decoded bytes not yet split into events
    std::string body_;
    std::string last_raw_event_;
    State state_ = State::open;
};

/// The `data:` payload of one raw event ("" when it has none); several data lines joined by \n.
std::string sse_data(std::string_view event, bool* has_data = nullptr);

}  // namespace turnout::test
