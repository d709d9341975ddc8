// The turnout command line (CONTRACT.md, "Command line").

#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/logging.hpp"
#include "cli/demo.hpp"
#include "cli/eval.hpp"
#include "cli/explain_command.hpp"
#include "config/loader.hpp"
#include "gateway/server.hpp"
#include "sim/simulator.hpp"

namespace {

constexpr std::string_view kVersion = "turnout 0.1.0";

constexpr std::string_view kUsage =
    R"(turnout: an OpenAI-compatible LLM gateway that shadows, judges and flips routes

usage:
  turnout --config FILE                 run the gateway (same as `serve`)
  turnout serve --config FILE [--threads N]
  turnout check --config FILE           validate a config: exit 0, or 2 with FILE:LINE:COL lines
  turnout demo [--listen ADDR] [--admin-listen ADDR]
  turnout eval --config FILE --route NAME --prompts FILE.jsonl [--out DIR] [--concurrency N]
               [--limit N]      offline check: both models on your prompts, judged, a verdict
                                (see `turnout eval --help`)
  turnout explain --config FILE --route NAME [--requests-per-hour N]
                                what the route's promotion settings mean: chances of a flip
                                and a rollback within a day, a week, a month by true pass
                                rate, time to a flip (see `turnout explain --help`)
  turnout simulate --listen ADDR ...    a simulated provider (see `turnout simulate --help`)
  turnout --version | --help
)";

struct Args {
    std::string config_path;
    unsigned threads = 0;
    std::string error;
};

Args parse_serve_args(const std::vector<std::string_view>& args) {
    Args parsed;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--config" && has_value) {
            parsed.config_path = args[++i];
        } else if (args[i] == "--threads" && has_value) {
            try {
                parsed.threads = static_cast<unsigned>(std::stoul(std::string(args[++i])));
            } catch (const std::exception&) {
                parsed.error = "--threads needs a number";
            }
        } else {
            parsed.error = "unexpected argument '" + std::string(args[i]) + "'";
        }
    }
    if (parsed.error.empty() && parsed.config_path.empty())
        parsed.error = "--config FILE is required";
    return parsed;
}

void print_problems(const turnout::config::LoadResult& result) {
    for (const auto& warning : result.warnings) std::cerr << "warning: " << warning << '\n';
    for (const auto& error : result.errors) std::cerr << error.text << '\n';
}

int run_check(const Args& args) {
    const auto result =
        turnout::config::load_config_file(args.config_path, turnout::config::EnvPolicy::warn);
    print_problems(result);
    if (!result.errors.empty()) return 2;
    std::cout << args.config_path << ": ok\n";
    return 0;
}

int run_serve(const Args& args) {
    const auto result =
        turnout::config::load_config_file(args.config_path, turnout::config::EnvPolicy::require);
    print_problems(result);
    if (!result.errors.empty()) return 2;
    turnout::base::init_logging(result.config->log);
    try {
        return turnout::gateway::serve(result.config,
                                       {.threads = args.threads, .config_path = args.config_path});
    } catch (const std::exception& e) {
        std::cerr << "turnout: cannot start: " << e.what() << '\n';
        return 2;
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::cout << kUsage;
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
        std::cout << kVersion << '\n';
        return 0;
    }
    if (args[0] == "simulate") return turnout::sim::simulate_main(argc - 1, argv + 1);
    if (args[0] == "demo") return turnout::cli::demo_main(argc - 1, argv + 1);
    if (args[0] == "eval") return turnout::cli::eval_main(argc - 1, argv + 1);
    if (args[0] == "explain") return turnout::cli::explain_main(argc - 1, argv + 1);

    const bool is_check = args[0] == "check";
    const bool is_serve = args[0] == "serve";
    const std::vector<std::string_view> rest(args.begin() + (is_check || is_serve ? 1 : 0),
                                             args.end());
    const Args parsed = parse_serve_args(rest);
    if (!parsed.error.empty()) {
        std::cerr << "turnout: " << parsed.error << "\n\n" << kUsage;
        return 2;
    }
    return is_check ? run_check(parsed) : run_serve(parsed);
}
