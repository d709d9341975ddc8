#include "shadow/store_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <utility>

namespace turnout::shadow::detail {

std::error_code errno_code() { return {errno != 0 ? errno : EIO, std::system_category()}; }

Fd::Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) {
        reset();
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

void Fd::reset() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = -1;
}

std::error_code Fd::close() {
    int fd = std::exchange(fd_, -1);
    return fd >= 0 && ::close(fd) != 0 ? errno_code() : std::error_code{};
}

Fd open_fd(const std::string& path, int flags, mode_t mode) {
    for (;;) {
        int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EINTR) {
            return Fd(fd);
        }
    }
}

std::error_code write_all(int fd, std::string_view data, std::size_t& written) {
    written = 0;
    while (written < data.size()) {
        ssize_t n = ::write(fd, data.data() + written, data.size() - written);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno_code();
        }
        if (n == 0) {
            return std::make_error_code(std::errc::no_space_on_device);
        }
        written += static_cast<std::size_t>(n);
    }
    return {};
}

bool pread_all(int fd, char* out, std::size_t size, off_t offset) {
    errno = 0;  // an early end of file sets none: errno_code() then reports EIO
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = ::pread(fd, out + done, size - done, offset + static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

void make_private_dir(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            throw std::system_error(std::make_error_code(std::errc::not_a_directory),
                                    "state.path '" + path + "'");
        }
        return;
    }
    if (errno != ENOENT) {
        throw std::system_error(errno_code(), "state.path '" + path + "'");
    }
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec) {
            throw std::system_error(ec, "state.path parent '" + parent.string() + "'");
        }
    }
    if (::mkdir(path.c_str(), kStoreDirMode) != 0 && errno != EEXIST) {
        throw std::system_error(errno_code(), "state.path '" + path + "'");
    }
    // The umask may have removed owner bits; 0700 is what the store needs and promises.
    if (::chmod(path.c_str(), kStoreDirMode) != 0) {
        throw std::system_error(errno_code(), "state.path '" + path + "'");
    }
}

std::optional<std::vector<std::string>> list_dir(const std::string& dir) {
    DIR* handle = ::opendir(dir.c_str());
    if (handle == nullptr) {
        return std::nullopt;
    }
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(handle)) {
        std::string_view name = entry->d_name;
        if (name != "." && name != "..") {
            names.emplace_back(name);
        }
    }
    ::closedir(handle);
    return names;
}

std::optional<std::string> read_small_file(const std::string& path, std::error_code& ec) {
    Fd fd = open_fd(path, O_RDONLY);
    if (!fd) {
        ec = errno_code();
        return std::nullopt;
    }
    std::string content;
    char buffer[16 * 1024];
    for (;;) {
        ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            ec = errno_code();
            return std::nullopt;
        }
        if (n == 0) {
            return content;
        }
        content.append(buffer, static_cast<std::size_t>(n));
    }
}

}  // namespace turnout::shadow::detail
