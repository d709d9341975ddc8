#include "tests/support/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

extern char** environ;

namespace turnout::test {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

/// The first line of a report: `==PID==ERROR: AddressSanitizer: ...`, `==PID==ERROR:
/// LeakSanitizer: ...`, `WARNING: ThreadSanitizer: data race ...`, `ThreadSanitizer: ...` (its
/// fatal errors) and UBSan's `FILE:LINE:COL: runtime error: ...`.
bool starts_report(std::string_view line) {
    for (std::string_view marker :
         {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
          "ThreadSanitizer: ", ": runtime error: "}) {
        if (line.find(marker) != std::string_view::npos) return true;
    }
    return false;
}

/// `SUMMARY: AddressSanitizer: ...` and the like: the last line of every report.
bool ends_report(std::string_view line) {
    return line.starts_with("SUMMARY: ") && line.find("Sanitizer") != std::string_view::npos;
}

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

ChildProcess::ChildProcess(ProcessOptions options) : options_(std::move(options)) {
    if (options_.argv.empty()) throw std::runtime_error("ChildProcess: empty argv");

    // Everything the child needs is prepared before fork(): after it, only async-signal-safe
    // calls are allowed (the test binary has threads).
    std::vector<char*> argv;
    for (auto& arg : options_.argv) argv.push_back(arg.data());
    argv.push_back(nullptr);

    std::map<std::string, std::string> env_map;
    for (char** e = environ; *e; ++e) {
        std::string entry(*e);
        auto eq = entry.find('=');
        if (eq == std::string::npos) continue;
        env_map[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    for (const auto& name : options_.unset_env) env_map.erase(name);
    for (const auto& [name, value] : options_.env) env_map[name] = value;
    std::vector<std::string> env_strings;
    for (const auto& [name, value] : env_map) env_strings.push_back(name + "=" + value);
    std::vector<char*> envp;
    for (auto& entry : env_strings) envp.push_back(entry.data());
    envp.push_back(nullptr);

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        throw std::runtime_error("pipe2 failed");
    }
    const char* cwd = options_.cwd.empty() ? nullptr : options_.cwd.c_str();
    std::optional<rlimit> max_open_files;
    if (options_.max_open_files) {
        max_open_files = rlimit{static_cast<rlim_t>(options_.max_open_files->first),
                                static_cast<rlim_t>(options_.max_open_files->second)};
    }
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(out[0]);
        ::close(out[1]);
        if (devnull >= 0) ::close(devnull);
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::setpgid(0, 0);
        // Dies with the test binary even if it is killed (no destructor runs then).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
        ::dup2(out[1], STDOUT_FILENO);
        ::dup2(out[1], STDERR_FILENO);
        if (cwd && ::chdir(cwd) != 0) {
            static const char msg[] = "ChildProcess: chdir failed\n";
            [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
            ::_exit(127);
        }
        if (max_open_files && ::setrlimit(RLIMIT_NOFILE, &*max_open_files) != 0) {
            static const char msg[] = "ChildProcess: setrlimit(RLIMIT_NOFILE) failed\n";
            [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
            ::_exit(127);
        }
        ::execve(argv[0], argv.data(), envp.data());
        static const char msg[] = "ChildProcess: execve failed\n";
        [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also in the parent: no race with kill(-pid) below
    ::close(out[1]);
    if (devnull >= 0) ::close(devnull);
    pid_ = pid;
    output_fd_ = out[0];
#ifdef SYS_pidfd_open
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#endif
    reader_ = std::thread([this] { read_output(); });
}

ChildProcess::~ChildProcess() {
    kill_now();
    // The reader drains what the child wrote before it stops (it only stops on an idle pipe),
    // so a report printed just before the kill is still seen.
    if (stop_pipe_[1] >= 0) {
        char c = 0;
        [[maybe_unused]] auto n = ::write(stop_pipe_[1], &c, 1);
    }
    if (reader_.joinable()) reader_.join();
    for (int fd : {output_fd_, stop_pipe_[0], stop_pipe_[1], pidfd_}) {
        if (fd >= 0) ::close(fd);
    }
    check_sanitizer_report();
}

void ChildProcess::check_sanitizer_report() {
    if (report_checked_) return;
    report_checked_ = true;
    auto report = sanitizer_report(lines());
    if (!report) return;
    std::string status = exit_code_ ? "exit code " + std::to_string(*exit_code_) : "killed";
    ADD_FAILURE() << "child process " << options_.argv.front() << " (pid " << pid_ << ", " << status
                  << ") printed a sanitizer report:\n"
                  << *report;
}

std::optional<std::string> sanitizer_report(const std::vector<std::string>& lines) {
    constexpr std::size_t kMaxLines = 200;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (!starts_report(lines[i]) && !ends_report(lines[i])) continue;
        std::string report;
        for (std::size_t j = i; j < lines.size() && j < i + kMaxLines; ++j) {
            report.append(lines[j]) += '\n';
            if (ends_report(lines[j])) break;
        }
        return report;
    }
    return std::nullopt;
}

void ChildProcess::read_output() {
    std::string partial;
    char buf[8192];
    for (;;) {
        pollfd fds[2] = {{output_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        int r = ::poll(fds, 2, -1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        bool stop = (fds[1].revents & POLLIN) != 0;
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::read(output_fd_, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            partial.append(buf, static_cast<std::size_t>(n));
            std::lock_guard lock(mutex_);
            for (auto nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n')) {
                lines_.push_back(partial.substr(0, nl));
                partial.erase(0, nl + 1);
            }
            cv_.notify_all();
            continue;
        }
        if (stop) break;
    }
    std::lock_guard lock(mutex_);
    if (!partial.empty()) lines_.push_back(partial);
    output_ended_ = true;
    cv_.notify_all();
}

std::optional<std::string> ChildProcess::wait_for_line(
    const std::function<bool(const std::string&)>& matches, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    std::unique_lock lock(mutex_);
    std::size_t checked = 0;
    for (;;) {
        for (; checked < lines_.size(); ++checked) {
            if (matches(lines_[checked])) return lines_[checked];
        }
        if (output_ended_) return std::nullopt;
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
            for (; checked < lines_.size(); ++checked) {
                if (matches(lines_[checked])) return lines_[checked];
            }
            return std::nullopt;
        }
    }
}

std::optional<std::string> ChildProcess::wait_for_line(const std::regex& pattern,
                                                       std::chrono::milliseconds timeout) {
    return wait_for_line([&](const std::string& line) { return std::regex_search(line, pattern); },
                         timeout);
}

std::vector<std::string> ChildProcess::lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
}

std::string ChildProcess::output() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& line : lines_) out.append(line) += '\n';
    return out;
}

bool ChildProcess::send_signal(int signal) {
    if (exit_code_) return false;
    return ::kill(pid_, signal) == 0;
}

bool ChildProcess::reap(bool block) {
    if (exit_code_) return true;
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
        if (r < 0 && errno == EINTR) continue;
        if (r == pid_) {
            exit_code_ = decode_status(status);
            return true;
        }
        return false;
    }
}

bool ChildProcess::running() { return !reap(false); }

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!reap(false)) {
        if (Clock::now() >= deadline) return std::nullopt;
        if (pidfd_ >= 0) {
            pollfd p{pidfd_, POLLIN, 0};
            ::poll(&p, 1, remaining_ms(deadline));
        } else {
            // No pidfd (old kernel): poll the exit status at a short interval.
            pollfd none{-1, 0, 0};
            ::poll(&none, 1, std::min(remaining_ms(deadline), 5));
        }
    }
    return exit_code_;
}

void ChildProcess::kill_now() {
    if (pid_ <= 0 || exit_code_) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    reap(true);
}

RunResult run_command(ProcessOptions options, std::chrono::milliseconds timeout) {
    ChildProcess child(std::move(options));
    RunResult result;
    auto code = child.wait_exit(timeout);
    if (!code) {
        child.kill_now();
    }
    // The output pipe may still hold the last lines: wait for its end.
    child.wait_for_line([](const std::string&) { return false; }, std::chrono::seconds(5));
    result.exit_code = code.value_or(-1);
    result.output = child.output();
    return result;
}

}  // namespace turnout::test
