#include "base/bounded_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace turnout::base {
namespace {

std::string system_message(int error) {
    return std::error_code(error, std::generic_category()).message();
}

/// Closes the descriptor on every path out.
struct FileDescriptor {
    int fd;
    ~FileDescriptor() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

bool read_bounded_file(const std::string& path, std::size_t max_bytes, std::string& text,
                       std::string& reason) {
    text.clear();
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    const FileDescriptor file{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
    if (file.fd < 0) {
        reason = system_message(errno);
        return false;
    }
    struct stat info {};
    if (::fstat(file.fd, &info) != 0) {
        reason = system_message(errno);
        return false;
    }
    if (S_ISDIR(info.st_mode)) {
        reason = "is a directory";
        return false;
    }
    if (!S_ISREG(info.st_mode)) {
        reason = "not a regular file";
        return false;
    }
    const auto too_large = [&] {
        reason = "larger than " + std::to_string(max_bytes) + " bytes";
        text.clear();
        return false;
    };
    if (static_cast<std::uint64_t>(info.st_size) > max_bytes) return too_large();
    // The size can change while reading (a file being rewritten): the bound holds anyway.
    text.reserve(static_cast<std::size_t>(info.st_size));
    char buffer[8192];
    for (;;) {
        const ssize_t n = ::read(file.fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            reason = system_message(errno);
            text.clear();
            return false;
        }
        if (n == 0) return true;
        if (text.size() + static_cast<std::size_t>(n) > max_bytes) return too_large();
        text.append(buffer, static_cast<std::size_t>(n));
    }
}

}  // namespace turnout::base
