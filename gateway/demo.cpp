// `turnout demo`: starts two simulated providers (a slow "smart" model and a fast one) as
// child processes of this binary, then serves the embedded default config in front of them.

#include "gateway/demo.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "gateway/logging.hpp"
#include "gateway/server.hpp"
#include "routing/config_loader.hpp"

namespace turnout::gateway {
namespace {

constexpr const char* kDemoConfig = R"(# turnout demo: the embedded default configuration
listen: @API@
admin:
  listen: @ADMIN@
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
routes:
  - name: smart
    match: {model: smart}
    primary: {provider: smart-sim, model: opus-sim}
    candidate: {provider: fast-sim, model: spark-sim}
  - name: fast
    match: {model: fast}
    primary: {provider: fast-sim, model: spark-sim}
)";

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

}  // namespace

int demo_main(int argc, char** argv) {
    std::string api = "127.0.0.1:8080";
    std::string admin = "127.0.0.1:9090";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--listen" && i + 1 < argc) {
            api = argv[++i];
        } else if (arg == "--admin-listen" && i + 1 < argc) {
            admin = argv[++i];
        } else {
            std::cerr << "usage: turnout demo [--listen ADDR] [--admin-listen ADDR]\n";
            return 2;
        }
    }
    std::vector<Child> children;
    try {
        children.push_back(start_simulator({"simulate", "--listen", "127.0.0.1:0", "--ttft",
                                            "300ms", "--tps", "60", "--tokens", "24", "--text",
                                            "A careful answer from the slow smart model."}));
        children.push_back(start_simulator({"simulate", "--listen", "127.0.0.1:0", "--ttft",
                                            "20ms", "--tps", "900", "--tokens", "24", "--text",
                                            "A quick answer from the fast distilled model."}));
    } catch (const std::exception& e) {
        std::cerr << "turnout demo: " << e.what() << '\n';
        for (const auto& child : children) kill(child.pid, SIGTERM);
        return 2;
    }
    std::string yaml = kDemoConfig;
    replace_all(yaml, "@API@", api);
    replace_all(yaml, "@ADMIN@", admin);
    replace_all(yaml, "@SMART@", children[0].listen);
    replace_all(yaml, "@FAST@", children[1].listen);
    const auto loaded =
        routing::load_config_string(yaml, "<demo>", routing::EnvPolicy::require);
    int code = 2;
    if (!loaded.errors.empty()) {
        for (const auto& error : loaded.errors) std::cerr << error.text << '\n';
    } else {
        init_logging(loaded.config->log);
        std::cout << "turnout demo: gateway on http://" << api << " (admin http://" << admin
                  << "), simulated providers on " << children[0].listen << " and "
                  << children[1].listen << "\n  try:  curl -s http://" << api
                  << "/v1/chat/completions -H 'content-type: application/json' -d "
                     "'{\"model\":\"smart\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"hi\"}]}'\n  stop: Ctrl-C\n"
                  << std::flush;
        try {
            code = serve(loaded.config, {});
        } catch (const std::exception& e) {
            std::cerr << "turnout demo: cannot start: " << e.what() << '\n';
        }
    }
    for (const auto& child : children) {
        kill(child.pid, SIGTERM);
        waitpid(child.pid, nullptr, 0);
    }
    return code;
}

}  // namespace turnout::gateway
