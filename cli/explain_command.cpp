#include "cli/explain_command.hpp"

#include <cmath>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "config/loader.hpp"
#include "shadow/explain.hpp"

namespace turnout::cli {

namespace {

constexpr std::string_view kUsage =
    R"(usage: turnout explain --config FILE --route NAME [--requests-per-hour N] [--runs N]

What the route's promotion settings mean: the chance of a flip and of a sequential rollback
within a day, a week and a month at true pass rates from 0.80 to 0.99, and the expected verdicts
and time to a flip at 0.95 and 0.97, from seeded runs of the gateway's own controller.

  --requests-per-hour N   live requests an hour on the route (default 600, ten a minute);
                          verdicts an hour = shadow.sample_rate x N (shadow_after_promotion x N
                          once promoted)
  --runs N                simulated routes per pass rate and direction (default 200; more is
                          more precise and slower)
)";

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct ExplainArgs {
    std::string config_path;
    std::string route;
    shadow::ExplainOptions options;
    bool help = false;
};

double positive_number(std::string_view flag, std::string_view text) {
    try {
        std::size_t used = 0;
        const double value = std::stod(std::string(text), &used);
        if (used == text.size() && std::isfinite(value) && value >= 0) return value;
    } catch (const std::exception&) {
    }
    throw UsageError(std::string(flag) + " needs a number >= 0, not '" + std::string(text) + "'");
}

ExplainArgs parse_args(int argc, char** argv) {
    ExplainArgs args;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--help" || arg == "-h") {
            args.help = true;
        } else if (arg == "--config" && has_value) {
            args.config_path = argv[++i];
        } else if (arg == "--route" && has_value) {
            args.route = argv[++i];
        } else if (arg == "--requests-per-hour" && has_value) {
            args.options.requests_per_hour = positive_number(arg, argv[++i]);
        } else if (arg == "--runs" && has_value) {
            const double runs = positive_number(arg, argv[++i]);
            if (runs < 1 || runs > 100'000 || runs != std::floor(runs)) {
                throw UsageError("--runs needs a whole number from 1 to 100000");
            }
            args.options.runs = static_cast<std::uint32_t>(runs);
        } else {
            throw UsageError("unexpected argument '" + std::string(arg) + "'");
        }
    }
    if (args.help) return args;
    if (args.config_path.empty()) throw UsageError("--config FILE is required");
    if (args.route.empty()) throw UsageError("--route NAME is required");
    return args;
}

int run(const ExplainArgs& args) {
    // Only the promotion settings matter here: unset key variables are no concern.
    const auto loaded = config::load_config_file(args.config_path, config::EnvPolicy::warn);
    for (const auto& error : loaded.errors) std::cerr << error.text << '\n';
    if (!loaded.errors.empty()) return 2;
    std::string names;
    for (const auto& route : loaded.config->routes) {
        if (route.name == args.route) {
            std::cout << shadow::render(shadow::explain(route, args.options)) << std::flush;
            return 0;
        }
        names += (names.empty() ? "" : ", ") + route.name;
    }
    std::cerr << "turnout explain: " << args.config_path << ": no route '" << args.route
              << "' (routes: " << names << ")\n";
    return 2;
}

}  // namespace

int explain_main(int argc, char** argv) {
    try {
        const ExplainArgs args = parse_args(argc, argv);
        if (args.help) {
            std::cout << kUsage;
            return 0;
        }
        return run(args);
    } catch (const UsageError& e) {
        std::cerr << "turnout explain: " << e.what() << "\n\n" << kUsage;
    } catch (const std::exception& e) {
        std::cerr << "turnout explain: " << e.what() << '\n';
    }
    return 2;
}

}  // namespace turnout::cli
