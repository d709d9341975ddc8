#pragma once
/// Internal to shadow/: the lines of a JSON-lines file, read in blocks forwards or backwards.
/// Every '\n'-separated segment is a line, the unterminated tail (a torn line) included:
/// callers parse and skip what is not JSON. Empty segments are skipped.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace turnout::shadow::detail {

/// A line visitor: returns false to stop the scan.
using LineVisitor = std::function<bool(std::string_view)>;

/// Calls `emit` for each line of the file, last first, reading `block` bytes at a time from the
/// end. A missing or unreadable file ends its scan quietly (what was read is kept). Returns
/// false if `emit` stopped the scan.
bool scan_file_backward(const std::string& path, std::size_t block, const LineVisitor& emit);

/// The same, first line first.
bool scan_file_forward(const std::string& path, std::size_t block, const LineVisitor& emit);

}  // namespace turnout::shadow::detail
