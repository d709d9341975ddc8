#pragma once
/// What every streamed answer shares, whatever its API: the stream counters, the time to first
/// token, content frames paced at the planned tokens per second, and the faults planned before
/// a frame (a TCP reset, or the Anthropic API's mid-stream `error` event).

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>

#include "sim/exchange.hpp"
#include "sim/plan.hpp"

namespace turnout::sim {

/// How a stream went; ended: it was closed cleanly early (an `error` event was its last frame).
enum class StreamStep { ok, aborted, reset, ended };

/// One streamed answer on `exchange`. Lives in the frame of the coroutine that streams it (so
/// active_streams stays right however the stream ends, io_context destruction included); its
/// coroutines are awaited at once.
class PacedStream {
  public:
    PacedStream(Exchange& exchange, const Plan& plan);
    ~PacedStream();
    PacedStream(const PacedStream&) = delete;
    PacedStream& operator=(const PacedStream&) = delete;

    /// The time to first token. It comes before the response head, so it is also the time to
    /// the first byte: a gateway's first-byte timeout and failover can be tested with it.
    boost::asio::awaitable<void> wait_first_token();
    /// The response head; aborted when the client is gone.
    boost::asio::awaitable<StreamStep> send_head();
    /// Writes the exchange's frame(); `last` ends the body.
    boost::asio::awaitable<StreamStep> send(bool last = false);
    /// From now, content frame `index` is due `index / tps` later.
    void start_pacing();
    /// Waits until content frame `index` is due, then injects the fault planned before it.
    boost::asio::awaitable<StreamStep> before_content(std::size_t index);
    /// Injects the fault planned before the closing frames, after `count` content frames.
    boost::asio::awaitable<StreamStep> before_close(std::size_t count);
    /// Counts how the stream ended; returns what the connection does next.
    After finish(StreamStep step);

  private:
    boost::asio::awaitable<StreamStep> inject_fault(std::size_t index);

    Exchange& exchange_;
    Faults faults_;
    std::chrono::milliseconds ttft_;
    std::chrono::duration<double> interval_;
    Clock::time_point start_;
};

}  // namespace turnout::sim
