#pragma once
/// Reads a file named in the config (the config itself, a judge `prompt_file`) whole, but only
/// a regular file and only up to a bound: a path pointing at /dev/zero must not grow the
/// process without limit, and a FIFO must not block the thread that reloads.

#include <cstddef>
#include <string>

namespace turnout::base {

/// Files named by the config are small text; 16 MiB is far above any real one.
inline constexpr std::size_t kMaxConfigFileBytes = 16u << 20;

/// True with the contents in `text`; false with a short `reason` ("not a regular file",
/// "larger than 16777216 bytes", or the system's message). Never blocks on a FIFO or device.
bool read_bounded_file(const std::string& path, std::size_t max_bytes, std::string& text,
                       std::string& reason);

}  // namespace turnout::base
