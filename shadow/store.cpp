#include "shadow/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "routing/json_input.hpp"

namespace turnout::shadow {
namespace {

constexpr std::string_view kTempPrefix = ".tmp.";
constexpr std::string_view kStateSuffix = ".json";
constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;

/// A line visitor: returns false to stop the scan.
using LineVisitor = std::function<bool(std::string_view)>;

/// The current errno as an error; EIO when a call failed without setting it (a short read).
std::error_code errno_code() { return {errno != 0 ? errno : EIO, std::system_category()}; }

std::error_code errc_code(std::errc value) { return std::make_error_code(value); }

/// Owns a file descriptor and closes it once.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = -1;
    }
    /// Closes and reports the close error (which can carry a deferred write error).
    std::error_code close() {
        int fd = std::exchange(fd_, -1);
        return fd >= 0 && ::close(fd) != 0 ? errno_code() : std::error_code{};
    }

  private:
    int fd_ = -1;
};

Fd open_fd(const std::string& path, int flags, mode_t mode = 0) {
    for (;;) {
        int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EINTR) {
            return Fd(fd);
        }
    }
}

/// Writes all of `data`; one write(2) unless the kernel returns short (disk nearly full).
/// `written` receives the bytes that did reach the file, even on error.
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
            return errc_code(std::errc::no_space_on_device);
        }
        written += static_cast<std::size_t>(n);
    }
    return {};
}

/// Reads exactly `size` bytes at `offset` (false on error or an unexpected end of file).
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

/// Makes a rename, create or unlink inside `dir` durable.
std::error_code sync_dir(const std::string& dir) {
    Fd fd = open_fd(dir, O_RDONLY | O_DIRECTORY);
    if (!fd) {
        return errno_code();
    }
    if (::fsync(fd.get()) != 0) {
        return errno_code();
    }
    return fd.close();
}

/// Creates `path` (and missing parents) as a private directory, or checks the existing one.
/// An existing directory keeps its permissions: the operator may have chosen them.
void make_private_dir(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            throw std::system_error(errc_code(std::errc::not_a_directory),
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
    if (::mkdir(path.c_str(), kDirMode) != 0 && errno != EEXIST) {
        throw std::system_error(errno_code(), "state.path '" + path + "'");
    }
    // The umask may have removed owner bits; 0700 is what the store needs and promises.
    if (::chmod(path.c_str(), kDirMode) != 0) {
        throw std::system_error(errno_code(), "state.path '" + path + "'");
    }
}

/// The names in a directory (without "." and ".."); nullopt if it cannot be listed.
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

/// Reads a whole (small) file; nullopt with errno-based `ec` on failure.
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

/// State files and log lines are read back with the shared bounded reader: a corrupt or
/// hostile file is skipped, never a crash. Full precision: statistics come back bit for bit.
bool parse_object(std::string_view text, rapidjson::Document& doc) {
    constexpr routing::JsonInputOptions kOptions{.full_precision = true};
    return routing::parse_json_input(text, doc, kOptions) && doc.IsObject();
}

bool route_is(const rapidjson::Document& doc, std::string_view route) {
    auto it = doc.FindMember("route");
    return it != doc.MemberEnd() && it->value.IsString() &&
           std::string_view(it->value.GetString(), it->value.GetStringLength()) == route;
}

bool is_safe_name_char(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int upper_hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/// Strips one trailing '\n'; false if another newline remains (it would split the record).
bool single_line(std::string_view& line) {
    if (!line.empty() && line.back() == '\n') {
        line.remove_suffix(1);
    }
    return line.find('\n') == std::string_view::npos;
}

/// Calls `emit` for each '\n'-separated segment of a file, last first, reading `block` bytes at
/// a time from the end. The unterminated tail (a torn line) is a segment too: callers parse and
/// skip what is not JSON. Returns false if `emit` stopped the scan.
bool scan_file_backward(const std::string& path, std::size_t block, const LineVisitor& emit) {
    Fd fd = open_fd(path, O_RDONLY);
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        return true;  // a missing generation (never rotated, or a rotation cut short)
    }
    std::string buffer(block, '\0');
    std::string carry;  // the start of a line whose end was in a later block
    auto visit = [&](std::string_view segment) { return segment.empty() || emit(segment); };
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
            std::string_view segment(buffer.data() + i + 1, end - i - 1);
            bool go_on = true;
            if (carry.empty()) {
                go_on = visit(segment);
            } else {
                carry.insert(0, segment);
                go_on = visit(carry);
                carry.clear();
            }
            if (!go_on) {
                return false;
            }
            end = i;
        }
        carry.insert(0, buffer.data(), end);
    }
    return visit(carry);
}

/// Calls `emit` for each '\n'-separated segment of a file, first first.
bool scan_file_forward(const std::string& path, std::size_t block, const LineVisitor& emit) {
    Fd fd = open_fd(path, O_RDONLY);
    if (!fd) {
        return true;
    }
    std::string buffer(block, '\0');
    std::string carry;
    auto visit = [&](std::string_view segment) { return segment.empty() || emit(segment); };
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
            bool go_on = true;
            if (carry.empty()) {
                go_on = visit(chunk.substr(0, nl));
            } else {
                carry.append(chunk.substr(0, nl));
                go_on = visit(carry);
                carry.clear();
            }
            if (!go_on) {
                return false;
            }
            chunk.remove_prefix(nl + 1);
        }
        carry.append(chunk);
    }
    return visit(carry);
}

}  // namespace

/// One size-rotated JSON-lines log. All members lock `mutex_`.
class StateStore::AppendLog {
  public:
    /// Opens the current file; throws if it cannot be opened (start-up only).
    AppendLog(std::string dir, std::string name, const StoreOptions& options)
        : dir_(std::move(dir)), name_(std::move(name)), options_(options) {
        std::lock_guard lock(mutex_);
        if (auto ec = open_current()) {
            throw std::system_error(ec, "cannot open " + file_path(0));
        }
    }

    /// Appends `line` (one line, no '\n') as one record, rotating first if it would not fit.
    std::error_code append(std::string_view line) {
        std::lock_guard lock(mutex_);
        if (!fd_) {
            // A rotation or an earlier reopen failed: try again rather than lose records.
            if (auto ec = open_current()) {
                return ec;
            }
        }
        if (size_ > 0 && size_ + line.size() + 1 > options_.max_log_bytes) {
            if (auto ec = rotate()) {
                warn("rotating " + file_path(0) + " failed: " + ec.message());
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
            warn("appending to " + file_path(0) + " failed: " + ec.message());
            return ec;
        }
        torn_ = false;
        unsynced_ = true;
        if (options_.sync_every_append) return sync_locked();
        return {};
    }

    /// Makes every record appended so far durable across a power loss.
    std::error_code sync() {
        std::lock_guard lock(mutex_);
        return sync_locked();
    }

    /// Visits every line, newest first: the current file from its end, then .1, .2, ...
    void scan_newest_first(const LineVisitor& visit) {
        std::lock_guard lock(mutex_);
        std::size_t block = std::max<std::size_t>(options_.read_block_bytes, 1);
        for (std::size_t generation = 0; generation <= options_.keep_files; ++generation) {
            if (!scan_file_backward(file_path(generation), block, visit)) {
                return;
            }
        }
    }

    /// Visits every line, oldest first: .keep_files down to .1, then the current file.
    void scan_oldest_first(const LineVisitor& visit) {
        std::lock_guard lock(mutex_);
        std::size_t block = std::max<std::size_t>(options_.read_block_bytes, 1);
        for (std::size_t generation = options_.keep_files + 1; generation-- > 0;) {
            if (!scan_file_forward(file_path(generation), block, visit)) {
                return;
            }
        }
    }

  private:
    std::error_code sync_locked() {
        if (!fd_ || !unsynced_) return {};
        if (::fdatasync(fd_.get()) != 0) {
            const auto ec = errno_code();
            warn("fdatasync of " + file_path(0) + " failed: " + ec.message());
            return ec;
        }
        unsynced_ = false;
        return {};
    }

    bool unsynced_ = false;
    std::string file_path(std::size_t generation) const {
        std::string path = dir_ + "/" + name_;
        if (generation > 0) {
            path += "." + std::to_string(generation);
        }
        return path;
    }

    void warn(const std::string& message) const {
        if (options_.on_warning) {
            options_.on_warning(message);
        }
    }

    /// Opens (creating) the current file and ends a torn last line with '\n'.
    std::error_code open_current() {
        std::string path = file_path(0);
        Fd fd = open_fd(path, O_RDWR | O_APPEND | O_CREAT, kFileMode);
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
            warn(path + ": torn last line (interrupted write) terminated; readers skip it");
            std::size_t written = 0;
            if (auto ec = write_all(fd.get(), "\n", written)) {
                torn_ = true;  // the next append starts with the '\n'
                warn("terminating the torn line of " + path + " failed: " + ec.message());
            } else {
                size_ += written;
                ::fdatasync(fd.get());  // best effort: the next append syncs again anyway
            }
        }
        fd_ = std::move(fd);
        // The file may have just been created: make its directory entry durable.
        if (auto ec = sync_dir(dir_)) {
            warn("fsync of " + dir_ + " failed: " + ec.message());
        }
        return {};
    }

    /// Shifts name.N -> name.N+1 (dropping the oldest), name -> name.1, and opens a new file.
    /// A crash between the renames leaves a gap in the numbering, which readers skip.
    std::error_code rotate() {
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

    std::string dir_;
    std::string name_;
    const StoreOptions& options_;  // owned by the StateStore, which outlives this log
    std::mutex mutex_;
    Fd fd_;
    std::uint64_t size_ = 0;  // bytes in the current file (as written by this process)
    bool torn_ = false;       // the current file ends inside a record
};

StateStore::StateStore(std::string path, StoreOptions options)
    : path_(std::move(path)), options_(std::move(options)) {
    std::string dir = path_;
    while (dir.size() > 1 && dir.back() == '/') {
        dir.pop_back();  // "state/" has parent "state" to std::filesystem: not what we mean
    }
    if (dir.empty()) {
        throw std::invalid_argument("state.path is empty");
    }
    make_private_dir(dir);
    routes_dir_ = dir + "/routes";
    make_private_dir(routes_dir_);
    if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0 ||
        ::access(routes_dir_.c_str(), R_OK | W_OK | X_OK) != 0) {
        throw std::system_error(errno_code(), "state.path '" + path_ + "' is not writable");
    }
    remove_temp_files();
    verdicts_ = std::make_unique<AppendLog>(dir, "verdicts.jsonl", options_);
    events_ = std::make_unique<AppendLog>(dir, "events.jsonl", options_);
}

StateStore::~StateStore() = default;

void StateStore::warn(const std::string& message) const {
    if (options_.on_warning) {
        options_.on_warning(message);
    }
}

void StateStore::remove_temp_files() {
    auto names = list_dir(routes_dir_);
    if (!names) {
        throw std::system_error(errno_code(), "cannot list " + routes_dir_);
    }
    bool removed = false;
    for (const auto& name : *names) {
        if (!name.starts_with(kTempPrefix)) {
            continue;
        }
        std::string file = routes_dir_ + "/" + name;
        if (::unlink(file.c_str()) == 0) {
            removed = true;
            warn("removed " + file + " left by an interrupted save");
        } else {
            warn("cannot remove " + file + ": " + errno_code().message());
        }
    }
    if (removed) {
        sync_dir(routes_dir_);
    }
}

std::string StateStore::encode_route_name(std::string_view route) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(route.size());
    for (char ch : route) {
        auto c = static_cast<unsigned char>(ch);
        if (is_safe_name_char(c)) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
        }
    }
    return out;
}

std::optional<std::string> StateStore::decode_route_name(std::string_view stem) {
    if (stem.empty()) {
        return std::nullopt;
    }
    std::string out;
    for (std::size_t i = 0; i < stem.size(); ++i) {
        auto c = static_cast<unsigned char>(stem[i]);
        if (is_safe_name_char(c)) {
            out.push_back(stem[i]);
            continue;
        }
        if (c != '%' || i + 2 >= stem.size()) {
            return std::nullopt;
        }
        int high = upper_hex_value(stem[i + 1]);
        int low = upper_hex_value(stem[i + 2]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        auto byte = static_cast<unsigned char>(high * 16 + low);
        if (is_safe_name_char(byte)) {
            return std::nullopt;  // not canonical: two files could name one route
        }
        out.push_back(static_cast<char>(byte));
        i += 2;
    }
    return out;
}

std::error_code StateStore::save_route_state(const std::string& route, const std::string& json) {
    rapidjson::Document doc;
    if (route.empty() || !parse_object(json, doc)) {
        warn("state of route '" + route +
             "' not saved: " + (route.empty() ? "empty route name" : "not a JSON object"));
        return errc_code(std::errc::invalid_argument);
    }
    std::string stem = encode_route_name(route);
    if (kTempPrefix.size() + stem.size() + kStateSuffix.size() > NAME_MAX) {
        warn("state of route '" + route + "' not saved: name too long for a file name");
        return errc_code(std::errc::filename_too_long);
    }
    std::string target = routes_dir_ + "/" + stem + std::string(kStateSuffix);
    std::string temp =
        routes_dir_ + "/" + std::string(kTempPrefix) + stem + std::string(kStateSuffix);

    std::lock_guard lock(states_mutex_);
    auto fail = [&](std::error_code ec, const char* step) {
        ::unlink(temp.c_str());
        warn("saving the state of route '" + route + "' failed (" + step + " " + temp +
             "): " + ec.message());
        return ec;
    };
    Fd fd = open_fd(temp, O_WRONLY | O_CREAT | O_TRUNC, kFileMode);
    if (!fd) {
        return fail(errno_code(), "open");
    }
    std::size_t written = 0;
    if (auto ec = write_all(fd.get(), json, written)) {
        return fail(ec, "write");
    }
    if (::fsync(fd.get()) != 0) {
        return fail(errno_code(), "fsync");
    }
    if (auto ec = fd.close()) {
        return fail(ec, "close");
    }
    if (::rename(temp.c_str(), target.c_str()) != 0) {
        return fail(errno_code(), "rename");
    }
    if (auto ec = sync_dir(routes_dir_)) {
        // The new state is in place; only its durability across a power loss is in doubt.
        warn("fsync of " + routes_dir_ + " failed: " + ec.message());
        return ec;
    }
    return {};
}

std::map<std::string, std::string> StateStore::load_route_states() {
    std::map<std::string, std::string> states;
    std::lock_guard lock(states_mutex_);
    auto names = list_dir(routes_dir_);
    if (!names) {
        warn("cannot list " + routes_dir_ + ": " + errno_code().message());
        return states;
    }
    for (const auto& name : *names) {
        std::string file = routes_dir_ + "/" + name;
        if (name.starts_with(kTempPrefix)) {
            continue;  // removed on open; one appearing now is not ours to judge
        }
        std::optional<std::string> route;
        if (name.ends_with(kStateSuffix)) {
            route = decode_route_name(
                std::string_view(name).substr(0, name.size() - kStateSuffix.size()));
        }
        if (!route) {
            warn("ignoring " + file + ": not a route state file name");
            continue;
        }
        std::error_code ec;
        auto content = read_small_file(file, ec);
        if (!content) {
            warn("ignoring " + file + ": " + ec.message());
            continue;
        }
        rapidjson::Document doc;
        if (!parse_object(*content, doc)) {
            warn("ignoring " + file + ": corrupt route state (not a JSON object)");
            continue;
        }
        states.emplace(std::move(*route), std::move(*content));
    }
    return states;
}

std::error_code StateStore::append_verdict(const std::string& route, const std::string& json_line) {
    std::string_view line = json_line;
    rapidjson::Document doc;
    if (!single_line(line) || !parse_object(line, doc) || !route_is(doc, route)) {
        warn("verdict of route '" + route +
             "' not logged: not a one-line JSON object with a matching \"route\"");
        return errc_code(std::errc::invalid_argument);
    }
    return verdicts_->append(line);
}

std::error_code StateStore::sync_logs() {
    const auto verdicts = verdicts_->sync();
    const auto events = events_->sync();
    return verdicts ? verdicts : events;
}

std::error_code StateStore::append_event(const std::string& json_line) {
    std::string_view line = json_line;
    rapidjson::Document doc;
    if (!single_line(line) || !parse_object(line, doc)) {
        warn("event not logged: not a one-line JSON object");
        return errc_code(std::errc::invalid_argument);
    }
    return events_->append(line);
}

std::vector<std::string> StateStore::latest_verdicts(const std::string& route, std::size_t limit) {
    std::vector<std::string> lines;
    if (limit == 0) {
        return lines;
    }
    verdicts_->scan_newest_first([&](std::string_view line) {
        rapidjson::Document doc;
        if (parse_object(line, doc) && route_is(doc, route)) {
            lines.emplace_back(line);
        }
        return lines.size() < limit;
    });
    return lines;
}

std::vector<std::string> StateStore::all_verdicts(const std::string& route) {
    std::vector<std::string> lines;
    verdicts_->scan_oldest_first([&](std::string_view line) {
        rapidjson::Document doc;
        if (parse_object(line, doc) && route_is(doc, route)) {
            lines.emplace_back(line);
        }
        return true;
    });
    return lines;
}

std::vector<std::string> StateStore::latest_events(std::size_t limit) {
    std::vector<std::string> lines;
    if (limit == 0) {
        return lines;
    }
    events_->scan_newest_first([&](std::string_view line) {
        rapidjson::Document doc;
        if (parse_object(line, doc)) {
            lines.emplace_back(line);
        }
        return lines.size() < limit;
    });
    return lines;
}

}  // namespace turnout::shadow
