#pragma once
/// Internal to shadow/: one size-rotated, append-only JSON-lines log of the store
/// (verdicts.jsonl, events.jsonl): appends of one write(2) each, synced at once or batched
/// (StoreOptions::sync_every_append), torn last lines terminated, rotation, and reads newest or
/// oldest first. See store.hpp for the guarantees.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

#include "shadow/disk_sync.hpp"
#include "shadow/log_lines.hpp"
#include "shadow/store.hpp"
#include "shadow/store_files.hpp"

namespace turnout::shadow::detail {

/// All members lock the log's mutex.
class AppendLog {
  public:
    enum class Order { newest_first, oldest_first };

    /// Opens the current file `dir`/`name`; throws if it cannot be opened (start-up only).
    /// `options` and `sync` are the store's, which outlives the log.
    AppendLog(std::string dir, std::string name, const StoreOptions& options, const DiskSync& sync);

    /// Appends `line` (one line, no '\n') as one record, rotating first if it would not fit;
    /// syncs when options.sync_every_append.
    std::error_code append(std::string_view line);

    /// Makes every record appended so far durable across a power loss (a no-op when nothing
    /// was appended since the last sync).
    std::error_code sync();

    /// Visits every line: newest first (the current file from its end, then .1, .2, ...) or
    /// oldest first (.keep_files down to .1, then the current file).
    void scan(Order order, const LineVisitor& visit);

  private:
    std::error_code sync_locked();
    std::string file_path(std::size_t generation) const;
    /// Opens (creating) the current file and ends a torn last line with '\n'.
    std::error_code open_current();
    /// Shifts name.N -> name.N+1 (dropping the oldest), name -> name.1, and opens a new file.
    /// A crash between the renames leaves a gap in the numbering, which readers skip.
    std::error_code rotate();

    std::string dir_;
    std::string name_;
    const StoreOptions& options_;
    const DiskSync& sync_;
    std::mutex mutex_;
    Fd fd_;
    std::uint64_t size_ = 0;  // bytes in the current file (as written by this process)
    bool torn_ = false;       // the current file ends inside a record
    bool unsynced_ = false;   // appended since the last sync
};

}  // namespace turnout::shadow::detail
