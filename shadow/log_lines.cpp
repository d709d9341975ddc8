#include "shadow/log_lines.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "shadow/store_files.hpp"

namespace turnout::shadow::detail {
namespace {

/// Joins the pieces of a line that spans read blocks and hands whole lines to the visitor.
class LineJoiner {
  public:
    LineJoiner(const LineVisitor& emit, bool backward) : emit_(emit), backward_(backward) {}

    /// `piece` ends a line (its start, when reading backward): the line with what was carried.
    bool complete(std::string_view piece) {
        if (carry_.empty()) return visit(piece);
        carry(piece);
        const bool go_on = visit(carry_);
        carry_.clear();
        return go_on;
    }
    /// `piece` is part of a line that continues in the next block.
    void carry(std::string_view piece) {
        if (backward_) {
            carry_.insert(0, piece);
        } else {
            carry_.append(piece);
        }
    }
    /// The end of the file: what is carried is the last line read (a torn one, forward).
    bool finish() { return visit(carry_); }

  private:
    bool visit(std::string_view line) { return line.empty() || emit_(line); }

    const LineVisitor& emit_;
    const bool backward_;
    std::string carry_;
};

}  // namespace

bool scan_file_backward(const std::string& path, std::size_t block, const LineVisitor& emit) {
    Fd fd = open_fd(path, O_RDONLY);
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        return true;  // a missing generation (never rotated, or a rotation cut short)
    }
    std::string buffer(block, '\0');
    LineJoiner lines(emit, true);
    off_t pos = st.st_size;
    while (pos > 0) {
        auto n = static_cast<std::size_t>(std::min<off_t>(static_cast<off_t>(block), pos));
        pos -= static_cast<off_t>(n);
        if (!pread_all(fd.get(), buffer.data(), n, pos)) {
            return true;  // unreadable: keep what was read, go on with older files
        }
        std::size_t end = n;
        for (std::size_t i = n; i-- > 0;) {
            if (buffer[i] != '\n') {
                continue;
            }
            if (!lines.complete(std::string_view(buffer.data() + i + 1, end - i - 1))) {
                return false;
            }
            end = i;
        }
        lines.carry(std::string_view(buffer.data(), end));
    }
    return lines.finish();
}

bool scan_file_forward(const std::string& path, std::size_t block, const LineVisitor& emit) {
    Fd fd = open_fd(path, O_RDONLY);
    if (!fd) {
        return true;
    }
    std::string buffer(block, '\0');
    LineJoiner lines(emit, false);
    for (;;) {
        ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;  // end of file, or unreadable: keep what was read
        }
        std::string_view chunk(buffer.data(), static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = chunk.find('\n')) != std::string_view::npos;) {
            if (!lines.complete(chunk.substr(0, nl))) {
                return false;
            }
            chunk.remove_prefix(nl + 1);
        }
        lines.carry(chunk);
    }
    return lines.finish();
}

}  // namespace turnout::shadow::detail
