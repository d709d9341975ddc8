#pragma once
/// Internal to shadow/: every fsync and fdatasync the store performs, each behind the test gate
/// described in store.hpp (TURNOUT_TEST_STORE_SYNC_GATE).

#include <string>
#include <system_error>
#include <utility>

namespace turnout::shadow::detail {

class DiskSync {
  public:
    /// Reads TURNOUT_TEST_STORE_SYNC_GATE: the gate's path, or none when unset or empty.
    DiskSync();
    /// A gate at `gate` (empty: none), for tests.
    explicit DiskSync(std::string gate) : gate_(std::move(gate)) {}

    /// fdatasync(2) / fsync(2) of `fd`, after the gate; the error from errno.
    std::error_code fdatasync(int fd) const;
    std::error_code fsync(int fd) const;
    /// Makes a rename, create or unlink inside `dir` durable: an fsync of the directory.
    std::error_code sync_dir(const std::string& dir) const;

  private:
    /// While the gate's file exists: `<gate>.waiting` exists and this thread waits.
    void wait_at_gate() const;

    std::string gate_;
};

}  // namespace turnout::shadow::detail
