#pragma once
/// One connection as the API handlers see it: the request as received, reused buffers the
/// answer is rendered into, and the few I/O steps an answer takes. Session<Stream>
/// (session.cpp) implements the steps over TCP or TLS, so the handlers need no Beast.
///
/// Thread safety: none needed; a connection lives on one single-threaded io_context.

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/answer_text.hpp"
#include "sim/request_json.hpp"
#include "sim/state.hpp"

namespace turnout::sim {

/// What the connection does after an answer.
enum class After { next_request, close, drop };  // drop: already reset or dead

class Exchange {
  public:
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

    /// Sends body() as a JSON answer with a Content-Length.
    virtual boost::asio::awaitable<After> send_json(unsigned status) = 0;
    /// The head of a `text/event-stream` answer: chunked, or for HTTP/1.0 ended by closing.
    virtual boost::asio::awaitable<bool> write_stream_head() = 0;
    /// frame() as one write, so the client sees it when it is sent; `last` ends the body.
    virtual boost::asio::awaitable<bool> write_frame(bool last) = 0;
    virtual boost::asio::awaitable<void> sleep_until(Clock::time_point when) = 0;
    /// A TCP reset (the peer sees a connection reset, not a clean EOF) instead of an answer.
    virtual After reset_connection() = 0;

    const RequestData& request() const { return request_; }
    SimState& state() const { return *state_; }
    const Settings& settings() const { return state_->settings; }
    bool anthropic() const { return state_->settings.kind == Kind::anthropic; }
    bool keep_alive() const { return keep_alive_; }
    std::string& body() { return body_; }
    std::string& frame() { return frame_; }
    /// A reused string for messages under construction.
    std::string& scratch() { return scratch_; }

    /// A document from this connection's arena, which it clears: one document at a time.
    Document new_document();
    /// Parses the request body into `doc`; on failure the 400 body is in body().
    bool parse_body(Document& doc);
    /// A refused request's body in the kind's shape.
    void render_failure(unsigned status, std::string_view message, std::string_view code);
    /// A new answer identity; the prompt's tokens are estimated from the body's size.
    Reply new_reply(std::string_view model) const;

  protected:
    explicit Exchange(std::shared_ptr<SimState> state) : state_(std::move(state)) {}
    ~Exchange() = default;

    std::shared_ptr<SimState> state_;
    RequestData request_;
    bool keep_alive_ = true;
    std::vector<std::string> override_words_;  // an x-sim-text override

  private:
    JsonArena arena_;
    std::string body_;     // a Content-Length framed body
    std::string frame_;    // one SSE frame
    std::string scratch_;  // e.g. what is wrong with the request
};

}  // namespace turnout::sim
