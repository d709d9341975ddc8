#pragma once
/// Internal to shadow/: the POSIX file primitives of the store (descriptors, whole writes and
/// reads, private directories), with errors as std::error_code. Nothing here syncs: every
/// fsync and fdatasync goes through DiskSync (store_sync.hpp).

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace turnout::shadow::detail {

inline constexpr mode_t kStoreDirMode = 0700;
inline constexpr mode_t kStoreFileMode = 0600;

/// The current errno as an error; EIO when a call failed without setting it (a short read).
std::error_code errno_code();

/// Owns a file descriptor and closes it once.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept;
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset();
    /// Closes and reports the close error (which can carry a deferred write error).
    std::error_code close();

  private:
    int fd_ = -1;
};

/// open(2) with O_CLOEXEC, retried on EINTR; an empty Fd (errno set) on failure.
Fd open_fd(const std::string& path, int flags, mode_t mode = 0);

/// Writes all of `data`; one write(2) unless the kernel returns short (disk nearly full).
/// `written` receives the bytes that did reach the file, even on error.
std::error_code write_all(int fd, std::string_view data, std::size_t& written);

/// Reads exactly `size` bytes at `offset` (false on error or an unexpected end of file).
bool pread_all(int fd, char* out, std::size_t size, off_t offset);

/// Creates `path` (and missing parents) as a private directory, or checks the existing one.
/// An existing directory keeps its permissions: the operator may have chosen them. Throws
/// std::system_error (start-up only).
void make_private_dir(const std::string& path);

/// The names in a directory (without "." and ".."); nullopt if it cannot be listed.
std::optional<std::vector<std::string>> list_dir(const std::string& dir);

/// Reads a whole (small) file; nullopt with errno-based `ec` on failure.
std::optional<std::string> read_small_file(const std::string& path, std::error_code& ec);

}  // namespace turnout::shadow::detail
