// `turnout demo`: starts two simulated providers (a slow "smart" model and a fast one) as
// child processes of this binary, then serves the embedded default config in front of them.

#include "cli/demo.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/logging.hpp"
#include "config/loader.hpp"
#include "gateway/server.hpp"

namespace turnout::cli {

using base::flush_logs;
using base::gateway_log;
using base::init_logging;
using base::log_event;
namespace {

constexpr const char* kDemoConfig = R"(# turnout demo: the embedded default configuration
listen: @API@
admin:
  listen: @ADMIN@
state:
  path: @STATE@
log: {level: info, format: text}
providers:
  smart-sim:
    kind: openai
    base_url: http://@SMART@/v1
    price: {input_per_mtok: 15.0, output_per_mtok: 75.0}
  fast-sim:
    kind: openai
    base_url: http://@FAST@/v1
    price: {input_per_mtok: 0.5, output_per_mtok: 2.0}
  judge-sim:
    kind: openai
    base_url: http://@JUDGE@/v1
    price: {input_per_mtok: 15.0, output_per_mtok: 75.0}
routes:
  - name: smart
    match: {model: smart}
    primary: {provider: smart-sim, model: opus-sim}
    candidate: {provider: fast-sim, model: spark-sim}
    shadow: {sample_rate: 1.0, max_inflight: 16, queue: 256}
    judge: {provider: judge-sim, model: judge-sim, pass_score: 95}
    promotion:
      mode: auto
      window: 100
      min_samples: 50
      threshold: 0.90
      rollback_threshold: 0.85
      hold: 10s
      cooldown: 2m
      shadow_after_promotion: 1.0
  - name: fast
    match: {model: fast}
    primary: {provider: fast-sim, model: spark-sim}
)";

/// Prompts of the built-in traffic: a little of everything a coding team asks.
constexpr const char* kPrompts[] = {
    "Write a function that reverses a linked list.",
    "Explain the difference between a mutex and a semaphore.",
    "Summarise this stack trace: NullPointerException at Foo.bar(Foo.java:42).",
    "Refactor this loop into a list comprehension: for x in xs: ys.append(x * 2)",
    "What does HTTP status 431 mean?",
    "Write a SQL query that finds duplicate emails in a users table.",
    "Translate 'good morning' into Korean.",
    "Give three test cases for a function that parses durations like 250ms.",
    "Why is my Docker image 2 GB? Suggest ways to shrink it.",
    "Write a regex that matches an IPv4 address.",
    "Explain Wald's sequential probability ratio test in two sentences.",
    "Review this commit message: 'fix stuff'.",
};

struct Child {
    pid_t pid = -1;
    std::string listen;
};

/// Runs `this-binary simulate ARGS` and waits for its "listening" line.
Child start_simulator(const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the demo
        setpgid(0, 0);  // Ctrl-C reaches the demo only: it drains, then stops the providers
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        std::vector<char*> argv;
        std::string self = "/proc/self/exe";
        argv.push_back(self.data());
        for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
        argv.push_back(nullptr);
        execv("/proc/self/exe", argv.data());
        _exit(127);
    }
    close(out[1]);
    std::string seen;
    const std::regex listening(R"re("listen":"([^"]+)")re");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::smatch match;
    while (!std::regex_search(seen, match, listening)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd fd{out[0], POLLIN, 0};
        char buffer[512];
        ssize_t n = 0;
        if (left.count() <= 0 || poll(&fd, 1, static_cast<int>(left.count())) <= 0 ||
            (n = read(out[0], buffer, sizeof buffer)) <= 0) {
            kill(pid, SIGKILL);
            throw std::runtime_error("simulated provider did not start");
        }
        seen.append(buffer, static_cast<std::size_t>(n));
    }
    // Keep the pipe open but unread: the simulator logs nothing per request.
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    return {pid, match[1]};
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
}

/// host:port -> a connected socket, or -1.
int connect_to(const std::string& address) {
    const auto colon = address.rfind(':');
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
    std::string host = address.substr(0, colon);
    if (host == "0.0.0.0") host = "127.0.0.1";
    if (inet_pton(AF_INET, host.c_str(), &peer.sin_addr) != 1) return -1;
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof peer) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/// One blocking HTTP/1.1 exchange with `Connection: close`: the status and the body.
std::pair<int, std::string> http_call(const std::string& address, const std::string& method,
                                      const std::string& target, const std::string& body) {
    const int fd = connect_to(address);
    if (fd < 0) return {0, {}};
    const std::string request =
        method + " " + target + " HTTP/1.1\r\nHost: " + address +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
        close(fd);
        return {0, {}};
    }
    std::string response;
    char buffer[8192];
    for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) {
        response.append(buffer, static_cast<std::size_t>(n));
    }
    close(fd);
    const auto head_end = response.find("\r\n\r\n");
    if (response.size() < 12 || head_end == std::string::npos) return {0, {}};
    return {std::atoi(response.c_str() + 9), response.substr(head_end + 4)};
}

/// A port nobody listens on right now (for --listen HOST:0, which the traffic must know).
std::string with_free_port(const std::string& address) {
    const auto colon = address.rfind(':');
    if (address.substr(colon + 1) != "0") return address;
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &any.sin_addr);
    socklen_t size = sizeof any;
    bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any);
    getsockname(fd, reinterpret_cast<sockaddr*>(&any), &size);
    close(fd);
    return address.substr(0, colon + 1) + std::to_string(ntohs(any.sin_port));
}

/// The built-in traffic and the once-a-second status line, on their own threads.
class DemoDriver {
  public:
    DemoDriver(std::string api, std::string admin, std::string fast_sim, bool degrade)
        : api_(std::move(api)),
          admin_(std::move(admin)),
          fast_sim_(std::move(fast_sim)),
          degrade_(degrade) {}
    ~DemoDriver() { stop(); }

    void start() {
        for (int i = 0; i < kClients; ++i) threads_.emplace_back([this, i] { send_traffic(i); });
        threads_.emplace_back([this] { report(); });
    }
    void stop() {
        stopping_ = true;
        for (auto& thread : threads_) thread.join();
        threads_.clear();
    }

  private:
    static constexpr int kClients = 6;

    void send_traffic(int client) {
        // Traffic starts once the gateway answers, so no request fails for being early.
        while (!stopping_ && http_call(admin_, "GET", "/readyz", "").first != 200) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        std::uint64_t n = 0;
        while (!stopping_) {
            // Many distinct prompts, so the fast model's weak spots show up as some fails.
            const std::string prompt =
                std::string(kPrompts[(client * 7 + n) % std::size(kPrompts)]) + " (variant " +
                std::to_string((client * 13 + n) % 50) + ")";
            const std::string body =
                R"({"model":"smart","messages":[{"role":"user","content":")" + prompt + R"("}]})";
            const auto [status, answer] = http_call(api_, "POST", "/v1/chat/completions", body);
            ++n;
            (status == 200 ? ok_ : failed_).fetch_add(1);
            if (status == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    }

    void report() {
        bool degraded = false;
        while (!stopping_) {
            std::this_thread::sleep_for(std::chrono::seconds(1));
            const auto [status, body] = http_call(admin_, "GET", "/admin/routes", "");
            rapidjson::Document routes;
            routes.Parse(body.data(), body.size());
            if (status != 200 || routes.HasParseError() || !routes.HasMember("routes") ||
                !routes["routes"].IsArray() || routes["routes"].Empty()) {
                continue;
            }
            const auto& route = routes["routes"][0];
            const auto number = [&route](const char* key) {
                return route.HasMember(key) && route[key].IsNumber() ? route[key].GetDouble() : 0.0;
            };
            const std::string state = route["state"].GetString();
            std::printf(
                "demo: %6llu requests (%llu failed) | samples %3.0f | pass rate %5.1f%% | "
                "wilson %5.1f%% | sprt %+.2f of %+.2f | state %-11s | live %s\n",
                static_cast<unsigned long long>(ok_.load() + failed_.load()),
                static_cast<unsigned long long>(failed_.load()), number("samples"),
                100 * number("pass_rate"), 100 * number("wilson_lower"), number("sprt_llr"),
                number("sprt_accept"), state.c_str(), route["live_target"].GetString());
            std::fflush(stdout);
            if (degrade_ && !degraded && state == "promoted") {
                degraded = true;
                http_call(fast_sim_, "POST", "/_sim/config", R"({"degrade_rate":0.6})");
                std::printf("demo: --degrade: the fast model now fails 60%% of prompts\n");
            }
        }
    }

    std::string api_;
    std::string admin_;
    std::string fast_sim_;
    bool degrade_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> ok_{0};
    std::atomic<std::uint64_t> failed_{0};
    std::vector<std::thread> threads_;
};

}  // namespace

int demo_main(int argc, char** argv) {
    std::string api = "127.0.0.1:8080";
    std::string admin = "127.0.0.1:9090";
    bool degrade = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--listen" && i + 1 < argc) {
            api = argv[++i];
        } else if (arg == "--admin-listen" && i + 1 < argc) {
            admin = argv[++i];
        } else if (arg == "--degrade") {
            degrade = true;
        } else {
            std::cerr << "usage: turnout demo [--listen ADDR] [--admin-listen ADDR] [--degrade]\n";
            return 2;
        }
    }
    api = with_free_port(api);
    admin = with_free_port(admin);
    char state_template[] = "/tmp/turnout-demo-state.XXXXXX";
    if (mkdtemp(state_template) == nullptr) {
        std::cerr << "turnout demo: cannot create a state directory\n";
        return 2;
    }
    std::vector<Child> children;
    try {
        children.push_back(start_simulator({"simulate", "--listen", "127.0.0.1:0", "--ttft",
                                            "300ms", "--tps", "60", "--tokens", "24"}));
        children.push_back(
            start_simulator({"simulate", "--listen", "127.0.0.1:0", "--ttft", "20ms", "--tps",
                             "900", "--tokens", "24", "--degrade-rate", "0.04"}));
        children.push_back(start_simulator(
            {"simulate", "--listen", "127.0.0.1:0", "--role", "judge", "--ttft", "50ms"}));
    } catch (const std::exception& e) {
        std::cerr << "turnout demo: " << e.what() << '\n';
        for (const auto& child : children) kill(child.pid, SIGTERM);
        return 2;
    }
    std::string yaml = kDemoConfig;
    replace_all(yaml, "@API@", api);
    replace_all(yaml, "@ADMIN@", admin);
    replace_all(yaml, "@STATE@", state_template);
    replace_all(yaml, "@SMART@", children[0].listen);
    replace_all(yaml, "@FAST@", children[1].listen);
    replace_all(yaml, "@JUDGE@", children[2].listen);
    const auto loaded = config::load_config_string(yaml, "<demo>", config::EnvPolicy::require);
    int code = 2;
    if (!loaded.errors.empty()) {
        for (const auto& error : loaded.errors) std::cerr << error.text << '\n';
    } else {
        init_logging(loaded.config->log);
        std::cout << "turnout demo: gateway on http://" << api << " (admin http://" << admin
                  << "), state in " << state_template << "\n  simulated providers: smart (slow) "
                  << children[0].listen << ", fast " << children[1].listen << ", judge "
                  << children[2].listen
                  << "\n  built-in traffic runs now; watch the route flip to the fast model."
                  << "\n  try:  curl -s http://" << api
                  << "/v1/chat/completions -H 'content-type: application/json' -d "
                     "'{\"model\":\"smart\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"hi\"}]}'\n        curl -s http://"
                  << admin << "/admin/routes\n  stop: Ctrl-C\n"
                  << std::flush;
        DemoDriver driver(api, admin, children[1].listen, degrade);
        driver.start();
        try {
            code = gateway::serve(loaded.config, {});
        } catch (const std::exception& e) {
            std::cerr << "turnout demo: cannot start: " << e.what() << '\n';
        }
        driver.stop();
    }
    for (const auto& child : children) {
        kill(child.pid, SIGTERM);
        waitpid(child.pid, nullptr, 0);
    }
    return code;
}

}  // namespace turnout::cli
