#include "shadow/append_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace turnout::shadow::detail {

AppendLog::AppendLog(std::string dir, std::string name, const StoreOptions& options,
                     const DiskSync& sync)
    : dir_(std::move(dir)), name_(std::move(name)), options_(options), sync_(sync) {
    std::lock_guard lock(mutex_);
    if (auto ec = open_current()) {
        throw std::system_error(ec, "cannot open " + file_path(0));
    }
}

std::error_code AppendLog::append(std::string_view line) {
    std::lock_guard lock(mutex_);
    if (!fd_) {
        // A rotation or an earlier reopen failed: try again rather than lose records.
        if (auto ec = open_current()) {
            return ec;
        }
    }
    if (size_ > 0 && size_ + line.size() + 1 > options_.max_log_bytes) {
        if (auto ec = rotate()) {
            options_.warn("rotating " + file_path(0) + " failed: " + ec.message());
            if (!fd_) {
                return ec;
            }
            // The current file was not moved (its rename is the last step): keep appending
            // to it, oversized, rather than lose records.
        }
    }
    std::string record;
    record.reserve(line.size() + 2);
    if (torn_) {
        record.push_back('\n');  // end the torn record so this one does not glue onto it
    }
    record.append(line);
    record.push_back('\n');
    std::size_t written = 0;
    auto ec = write_all(fd_.get(), record, written);
    size_ += written;
    if (ec) {
        torn_ = torn_ || written > 0;
        options_.warn("appending to " + file_path(0) + " failed: " + ec.message());
        return ec;
    }
    torn_ = false;
    unsynced_ = true;
    if (options_.sync_every_append) return sync_locked();
    return {};
}

std::error_code AppendLog::sync() {
    std::lock_guard lock(mutex_);
    return sync_locked();
}

void AppendLog::scan(Order order, const LineVisitor& visit) {
    std::lock_guard lock(mutex_);
    const std::size_t block = std::max<std::size_t>(options_.read_block_bytes, 1);
    const std::size_t files = options_.keep_files + 1;
    for (std::size_t i = 0; i < files; ++i) {
        const bool go_on = order == Order::newest_first
                               ? scan_file_backward(file_path(i), block, visit)
                               : scan_file_forward(file_path(files - 1 - i), block, visit);
        if (!go_on) {
            return;
        }
    }
}

std::error_code AppendLog::sync_locked() {
    if (!fd_ || !unsynced_) return {};
    if (auto ec = sync_.fdatasync(fd_.get())) {
        options_.warn("fdatasync of " + file_path(0) + " failed: " + ec.message());
        return ec;
    }
    unsynced_ = false;
    return {};
}

std::string AppendLog::file_path(std::size_t generation) const {
    std::string path = dir_ + "/" + name_;
    if (generation > 0) {
        path += "." + std::to_string(generation);
    }
    return path;
}

std::error_code AppendLog::open_current() {
    std::string path = file_path(0);
    Fd fd = open_fd(path, O_RDWR | O_APPEND | O_CREAT, kStoreFileMode);
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        return errno_code();
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
    torn_ = false;
    char last = '\n';
    if (size_ > 0 && !pread_all(fd.get(), &last, 1, st.st_size - 1)) {
        return errno_code();
    }
    if (last != '\n') {
        options_.warn(path + ": torn last line (interrupted write) terminated; readers skip it");
        std::size_t written = 0;
        if (auto ec = write_all(fd.get(), "\n", written)) {
            torn_ = true;  // the next append starts with the '\n'
            options_.warn("terminating the torn line of " + path + " failed: " + ec.message());
        } else {
            size_ += written;
            sync_.fdatasync(fd.get());  // best effort: the next append syncs again anyway
        }
    }
    fd_ = std::move(fd);
    // The file may have just been created: make its directory entry durable.
    if (auto ec = sync_.sync_dir(dir_)) {
        options_.warn("fsync of " + dir_ + " failed: " + ec.message());
    }
    return {};
}

std::error_code AppendLog::rotate() {
    const std::size_t keep = options_.keep_files;
    // With keep_files == 0 the "oldest" file is the current one.
    if (::unlink(file_path(keep).c_str()) != 0 && errno != ENOENT) {
        return errno_code();
    }
    for (std::size_t generation = keep; generation-- > 0;) {
        bool present = generation == 0;  // the current file must move; older ones may be gaps
        if (::rename(file_path(generation).c_str(), file_path(generation + 1).c_str()) != 0 &&
            (present || errno != ENOENT)) {
            return errno_code();
        }
    }
    fd_.reset();
    return open_current();  // fsyncs the directory: the renames are durable too
}

}  // namespace turnout::shadow::detail
