#include "sim/stream_pacing.hpp"

#include <cstdint>
#include <string_view>

namespace turnout::sim {
namespace {

namespace asio = boost::asio;

constexpr std::string_view kOverloadedEvent =
    "event: error\n"
    R"(data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"
    "\n\n";

}  // namespace

PacedStream::PacedStream(Exchange& exchange, const Plan& plan)
    : exchange_(exchange),
      faults_(plan.faults),
      ttft_(plan.gen.ttft),
      interval_(plan.gen.tps > 0 ? 1.0 / plan.gen.tps : 0.0),
      start_(Clock::now()) {
    Stats& stats = exchange_.state().stats;
    bump(stats.streams_started);
    stats.active_streams.fetch_add(1, std::memory_order_relaxed);
}

PacedStream::~PacedStream() {
    exchange_.state().stats.active_streams.fetch_sub(1, std::memory_order_relaxed);
}

asio::awaitable<void> PacedStream::wait_first_token() {
    co_await exchange_.sleep_until(Clock::now() + ttft_);
}

asio::awaitable<StreamStep> PacedStream::send_head() {
    const bool sent = co_await exchange_.write_stream_head();
    co_return sent ? StreamStep::ok : StreamStep::aborted;
}

asio::awaitable<StreamStep> PacedStream::send(bool last) {
    const bool sent = co_await exchange_.write_frame(last);
    co_return sent ? StreamStep::ok : StreamStep::aborted;
}

void PacedStream::start_pacing() { start_ = Clock::now(); }

asio::awaitable<StreamStep> PacedStream::before_content(std::size_t index) {
    co_await exchange_.sleep_until(start_ +
                                   std::chrono::duration_cast<Clock::duration>(interval_ * index));
    co_return co_await inject_fault(index);
}

asio::awaitable<StreamStep> PacedStream::before_close(std::size_t count) {
    co_return co_await inject_fault(count);
}

// x-sim-reset-after: a TCP reset. x-sim-stream-error: the real API's mid-stream `error` event,
// which ends the response cleanly.
asio::awaitable<StreamStep> PacedStream::inject_fault(std::size_t index) {
    const auto frame = static_cast<std::int64_t>(index);
    if (frame == faults_.reset_after) {
        exchange_.reset_connection();
        co_return StreamStep::reset;
    }
    if (frame == faults_.stream_error) {
        exchange_.frame().assign(kOverloadedEvent);
        const StreamStep step = co_await send(true);
        co_return step == StreamStep::ok ? StreamStep::ended : step;
    }
    co_return StreamStep::ok;
}

After PacedStream::finish(StreamStep step) {
    Stats& stats = exchange_.state().stats;
    if (step == StreamStep::ok || step == StreamStep::ended) {
        bump(stats.streams_completed);
        return exchange_.keep_alive() ? After::next_request : After::close;
    }
    if (step == StreamStep::aborted) {
        bump(stats.streams_aborted);
    }
    return After::drop;
}

}  // namespace turnout::sim
