#pragma once
/// The embedded durable store under `state.path`: route states (one JSON file per route,
/// replaced atomically) and two append-only JSON-lines logs, `verdicts.jsonl` (one judged pair
/// per line) and `events.jsonl` (route transitions: the audit log), both rotated by size.
///
/// Layout of the directory (created with mode 0700 if missing; files are created 0600):
///   routes/<encoded route>.json     the route's state, as given to save_route_state
///   verdicts.jsonl, verdicts.jsonl.1 .. .keep_files    (.1 is the newest rotated file)
///   events.jsonl,   events.jsonl.1   .. .keep_files
///
/// Durability: a state is written to a temp file, fsynced, renamed over the target and the
/// directory fsynced, so a kill -9 (or power loss) leaves either the old or the new state. A
/// log record is one write(2) with O_APPEND followed by fdatasync: a crash loses at most the
/// record in flight, and a torn last line is terminated on the next open so it never glues onto
/// the next record; readers skip any line that is not a JSON object.
///
/// Thread safety: every member function may be called from any thread. Route states and each
/// log have their own mutex, so a verdict append never waits for an event append or a state
/// save. All calls do blocking disk I/O (fsync included): call them from background workers or
/// a blocking pool, never from an I/O thread. Readers hold the log's mutex while they read, so a
/// rotation cannot move files under them. One process owns a directory at a time (no file lock).
///
/// Errors: after construction nothing throws across this API (apart from std::bad_alloc): write
/// failures (disk full, permission denied) are returned as std::error_code and reported through
/// StoreOptions::on_warning; unreadable or corrupt files are skipped with a warning.
///
/// Test-only seam (a test holds the store inside a sync to show what does not wait for it):
/// when the environment variable TURNOUT_TEST_STORE_SYNC_GATE (kStoreSyncGateEnv) names a
/// path, read once when the store is constructed, then just before each fsync or fdatasync
/// the store performs, while that path exists: the store creates `<path>.waiting`, waits
/// (polling every 10 ms) until `<path>` no longer exists, removes `<path>.waiting` and goes on
/// with the sync. Unset or empty, or the path absent: no effect. Never set it in production.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace turnout::shadow {

namespace detail {
class AppendLog;
class DiskSync;
}  // namespace detail

/// The test-only sync gate's environment variable (see the file comment).
inline constexpr const char* kStoreSyncGateEnv = "TURNOUT_TEST_STORE_SYNC_GATE";

/// Tuning and reporting for a StateStore.
struct StoreOptions {
    /// A log is rotated before an append would take it past this size (a single record larger
    /// than this still goes into a file of its own).
    std::uint64_t max_log_bytes = 64ull * 1024 * 1024;
    /// Rotated files kept per log (`.1` .. `.keep_files`); the oldest is deleted. 0 keeps none.
    std::size_t keep_files = 3;
    /// Block size for reading logs backwards (latest_verdicts); small values exercise the block
    /// boundaries in tests.
    std::size_t read_block_bytes = 64 * 1024;
    /// Receives one human-readable line per problem (corrupt file skipped, torn line repaired,
    /// write failure). May be called from several threads at once, and with a store mutex held:
    /// it must be thread-safe and must not call back into the store. Empty: warnings dropped.
    std::function<void(const std::string&)> on_warning;
    /// fdatasync after every append (true), or only in sync_logs() (false: a caller that
    /// batches). Either way an append is one write(2): a killed process loses nothing
    /// appended; only a power loss can lose what was not synced yet.
    bool sync_every_append = true;

    /// on_warning(message) when set.
    void warn(const std::string& message) const {
        if (on_warning) on_warning(message);
    }
};

/// See the file comment. Not copyable or movable (the logs keep open descriptors and mutexes).
class StateStore {
  public:
    /// Opens (creating if missing) the state directory `path`, removes leftover temp files from
    /// an interrupted save, terminates torn last lines and opens both logs. Throws
    /// std::system_error / std::invalid_argument when the directory is unusable (start-up only).
    explicit StateStore(std::string path, StoreOptions options = {});
    ~StateStore();
    StateStore(const StateStore&) = delete;
    StateStore& operator=(const StateStore&) = delete;

    /// Atomically replaces the state of `route` (any non-empty name) with `json`, which must be
    /// a JSON object (std::errc::invalid_argument otherwise). A name whose encoding exceeds the
    /// file-name limit gives std::errc::filename_too_long.
    std::error_code save_route_state(const std::string& route, const std::string& json);

    /// Every saved route -> its JSON text, exactly as saved. Files that are not valid JSON
    /// objects or whose names do not decode are skipped with a warning.
    std::map<std::string, std::string> load_route_states();

    /// Appends one verdict: `json_line` is a JSON object on one line (a single trailing '\n' is
    /// allowed) whose "route" member equals `route`; otherwise std::errc::invalid_argument.
    std::error_code append_verdict(const std::string& route, const std::string& json_line);

    /// fdatasync of both logs, when anything was appended since the last sync.
    std::error_code sync_logs();

    /// Appends one audit event (a JSON object on one line) to events.jsonl.
    std::error_code append_event(const std::string& json_line);

    /// Up to `limit` verdict lines of `route`, newest first, reading blocks backwards from the end
    /// of the current log and then the rotated ones: it stops as soon as `limit` lines are found,
    /// so a small limit on an active route reads only the last blocks.
    std::vector<std::string> latest_verdicts(const std::string& route, std::size_t limit);

    /// Every stored verdict line of `route`, oldest first (to replay a controller window).
    std::vector<std::string> all_verdicts(const std::string& route);

    /// Up to `limit` audit events, newest first.
    std::vector<std::string> latest_events(std::size_t limit);

    /// The state directory as given.
    const std::string& path() const { return path_; }

    /// The file-name stem for a route: [A-Za-z0-9_-] kept, every other byte as %XX (upper-case
    /// hex). Reversible; never contains '/' or '.', so it cannot escape `routes/`.
    static std::string encode_route_name(std::string_view route);

    /// The inverse of encode_route_name; nullopt for anything it would not have produced
    /// (empty, '%' not followed by two upper-case hex digits, a needlessly encoded byte).
    static std::optional<std::string> decode_route_name(std::string_view stem);

  private:
    void remove_temp_files();

    std::string path_;
    std::string routes_dir_;
    StoreOptions options_;
    std::unique_ptr<const detail::DiskSync> sync_;  // every fsync and fdatasync, behind the gate
    std::mutex states_mutex_;  // serialises state saves and loads (one temp name per route)
    std::unique_ptr<detail::AppendLog> verdicts_;
    std::unique_ptr<detail::AppendLog> events_;
};

}  // namespace turnout::shadow
