#pragma once
/// A child process for integration tests: fork/exec in its own process group, stdout and stderr
/// captured line by line, waits with timeouts. The destructor kills the whole group (SIGKILL) and
/// reaps the child: no zombies, no stray servers after a failed test.
///
/// Sanitizer reports: a child built with ASan, UBSan or TSan prints its report on stderr and
/// then aborts, exits (TSan `exitcode`) or carries on (TSan without `halt_on_error`); a test
/// that only looks at HTTP answers would pass anyway. So the destructor reads all the output
/// the child wrote and, when it holds a report, fails the running test (ADD_FAILURE) with the
/// report, whatever the test checked.
///
/// Thread safety: the captured lines are guarded by a mutex (a reader thread appends them); the
/// other members are meant for the thread that created the object.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace turnout::test {

struct ProcessOptions {
    std::vector<std::string> argv;           ///< argv[0] is the executable path
    std::map<std::string, std::string> env;  ///< set on top of this process's environment
    std::vector<std::string> unset_env;      ///< removed from the inherited environment
    std::string cwd;                         ///< empty = inherit
    /// RLIMIT_NOFILE (soft, hard) for the child, set just before exec; nullopt = inherit.
    std::optional<std::pair<std::uint64_t, std::uint64_t>> max_open_files = {};
};

class ChildProcess {
  public:
    /// Starts the process; throws std::runtime_error when fork/exec setup fails. An exec failure
    /// shows up as exit code 127 and a line in the output.
    explicit ChildProcess(ProcessOptions options);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }

    /// The first captured line (from the start) that `matches`; nullopt on timeout or when the
    /// output ended (the process exited) without one.
    std::optional<std::string> wait_for_line(const std::function<bool(const std::string&)>& matches,
                                             std::chrono::milliseconds timeout);
    std::optional<std::string> wait_for_line(const std::regex& pattern,
                                             std::chrono::milliseconds timeout);

    std::vector<std::string> lines() const;
    std::string output() const;  ///< all lines joined, for failure messages

    bool send_signal(int signal);  ///< to the child only (not its group)
    /// Exit code (128 + signal number when killed by a signal); nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    bool running();
    /// Kills the whole process group with SIGKILL and reaps the child.
    void kill_now();

  private:
    void read_output();
    bool reap(bool block);
    /// ADD_FAILURE with the child's sanitizer report, if it printed one (once).
    void check_sanitizer_report();

    ProcessOptions options_;
    pid_t pid_ = -1;
    int output_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    int pidfd_ = -1;
    std::optional<int> exit_code_;
    std::thread reader_;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::string> lines_;
    bool output_ended_ = false;
    bool report_checked_ = false;
};

/// The sanitizer report in `lines` (from its first line to its SUMMARY line, at most 200 lines),
/// or nullopt when there is none: AddressSanitizer, LeakSanitizer, ThreadSanitizer and
/// UndefinedBehaviorSanitizer reports, as the runtimes print them.
std::optional<std::string> sanitizer_report(const std::vector<std::string>& lines);

/// Runs a command to completion and returns its exit code and output; exit code -1 on timeout.
struct RunResult {
    int exit_code = -1;
    std::string output;
};
RunResult run_command(ProcessOptions options, std::chrono::milliseconds timeout);

}  // namespace turnout::test
