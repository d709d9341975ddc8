#include "shadow/disk_sync.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "shadow/store.hpp"
#include "shadow/store_files.hpp"

namespace turnout::shadow::detail {
namespace {

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

DiskSync::DiskSync() {
    const char* gate = std::getenv(kStoreSyncGateEnv);
    if (gate != nullptr) gate_ = gate;
}

std::error_code DiskSync::fdatasync(int fd) const {
    wait_at_gate();
    return ::fdatasync(fd) != 0 ? errno_code() : std::error_code{};
}

std::error_code DiskSync::fsync(int fd) const {
    wait_at_gate();
    return ::fsync(fd) != 0 ? errno_code() : std::error_code{};
}

std::error_code DiskSync::sync_dir(const std::string& dir) const {
    Fd fd = open_fd(dir, O_RDONLY | O_DIRECTORY);
    if (!fd) {
        return errno_code();
    }
    if (auto ec = fsync(fd.get())) {
        return ec;
    }
    return fd.close();
}

void DiskSync::wait_at_gate() const {
    if (gate_.empty() || !exists(gate_)) return;
    const std::string waiting = gate_ + ".waiting";
    open_fd(waiting, O_WRONLY | O_CREAT, kStoreFileMode);  // closed at once: a marker
    while (exists(gate_)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ::unlink(waiting.c_str());
}

}  // namespace turnout::shadow::detail
