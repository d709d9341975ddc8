#include "sim/options.hpp"

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "config/loader.hpp"
#include "sim/answer_text.hpp"
#include "sim/values.hpp"

namespace turnout::sim {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::string_view kUsage =
    "usage: turnout simulate --listen HOST:PORT [--kind openai|anthropic] [--threads N]\n"
    "         [--ttft DURATION] [--tps N] [--tokens N] [--text TEXT] [--fault-status CODE]\n"
    "         [--fault-reset-after N] [--fault-stream-error N] [--fault-hang]\n"
    "         [--tls-cert FILE --tls-key FILE]\n"
    "         [--role answer|judge] [--degrade-rate R] [--judge-score N] [--judge-garbage]\n"
    "  --role judge (openai kind): /v1/chat/completions judges a turnout judge prompt: B\n"
    "    tagged [degraded] scores 40, B == A 100, otherwise 97; --judge-score forces a score,\n"
    "    --judge-garbage answers prose without JSON; missing fences get a refusal.\n"
    "  --degrade-rate R (openai kind, role answer): a stable share R (0..1) of prompts, by a\n"
    "    hash of `messages`, get ' [degraded]' appended; POST /_sim/config\n"
    "    {\"degrade_rate\": R} changes it at run time.\n";

tcp::endpoint parse_endpoint(std::string_view text) {
    const std::size_t colon = text.rfind(':');
    std::uint16_t port = 0;
    if (colon == std::string_view::npos || !parse_number(text.substr(colon + 1), port)) {
        throw std::invalid_argument("--listen: expected HOST:PORT, got '" + std::string(text) +
                                    "'");
    }
    std::string host(text.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (host.empty()) {
        return {asio::ip::address_v4::any(), port};
    }
    boost::system::error_code ec;
    const asio::ip::address address = asio::ip::make_address(host, ec);
    if (!ec) {
        return {address, port};
    }
    asio::io_context context;
    tcp::resolver resolver(context);
    const auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
        throw std::invalid_argument("--listen: cannot resolve '" + host + "'");
    }
    for (const auto& entry : results) {
        if (entry.endpoint().address().is_v4()) {
            return entry.endpoint();
        }
    }
    return results.begin()->endpoint();
}

// A duration with a unit, as in the config (config::parse_duration), or a bare zero.
bool parse_ttft(std::string_view text, std::chrono::milliseconds& out) {
    if (!text.empty() && text.find_first_not_of('0') == std::string_view::npos) {
        out = std::chrono::milliseconds(0);
        return true;
    }
    return config::parse_duration(text, out);
}

[[noreturn]] void bad_value(std::string_view option, std::string_view value,
                            std::string_view expected) {
    throw std::invalid_argument(std::string(option) + ": expected " + std::string(expected) +
                                ", got '" + std::string(value) + "'");
}

// The options that pick one of a few names.
bool apply_choice(Settings& settings, std::string_view option, std::string_view value) {
    if (option == "--kind") {
        if (value != "openai" && value != "anthropic") {
            bad_value(option, value, "openai or anthropic");
        }
        settings.kind = value == "openai" ? Kind::openai : Kind::anthropic;
        return true;
    }
    if (option == "--role") {
        if (value != "answer" && value != "judge") {
            bad_value(option, value, "answer or judge");
        }
        settings.role = value == "answer" ? Role::answer : Role::judge;
        return true;
    }
    return false;
}

// The options that set a number (or a duration) of Settings.
bool apply_number(Settings& settings, std::string_view option, std::string_view value) {
    std::int64_t number = 0;
    if (option == "--ttft") {
        if (!parse_ttft(value, settings.ttft)) {
            bad_value(option, value, "a duration like 50ms or 2s");
        }
    } else if (option == "--tps") {
        if (!parse_rate(value, settings.tps)) {
            bad_value(option, value, "tokens per second: 0 or at least 0.001");
        }
    } else if (option == "--tokens") {
        if (!parse_bounded(value, 0, 1'000'000, number)) {
            bad_value(option, value, "a token count from 0 to 1000000");
        }
        settings.tokens = static_cast<std::size_t>(number);
    } else if (option == "--fault-status") {
        if (!parse_status(value, settings.faults.status)) {
            bad_value(option, value, "an HTTP status from 200 to 599");
        }
    } else if (option == "--fault-reset-after") {
        if (!parse_bounded(value, 0, 1'000'000, settings.faults.reset_after)) {
            bad_value(option, value, "a frame count");
        }
    } else if (option == "--fault-stream-error") {
        if (!parse_bounded(value, 0, 1'000'000, settings.faults.stream_error)) {
            bad_value(option, value, "a delta count");
        }
    } else if (option == "--degrade-rate") {
        if (!parse_share(value, settings.degrade_rate)) {
            bad_value(option, value, "a share from 0 to 1");
        }
    } else if (option == "--judge-score") {
        if (!parse_bounded(value, 0, 100, number)) {
            bad_value(option, value, "a score from 0 to 100");
        }
        settings.judge_score = static_cast<int>(number);
    } else {
        return false;
    }
    return true;
}

void apply_option(Options& options, std::string& text, std::string_view option,
                  std::string_view value) {
    std::int64_t number = 0;
    if (option == "--listen") {
        options.listen = parse_endpoint(value);
    } else if (option == "--threads") {
        if (!parse_bounded(value, 1, 256, number)) {
            bad_value(option, value, "a thread count from 1 to 256");
        }
        options.threads = static_cast<unsigned>(number);
    } else if (option == "--text") {
        text = value;
    } else if (option == "--tls-cert") {
        options.tls_cert = value;
    } else if (option == "--tls-key") {
        options.tls_key = value;
    } else if (!apply_choice(options.settings, option, value) &&
               !apply_number(options.settings, option, value)) {
        throw std::invalid_argument("unknown option '" + std::string(option) + "'");
    }
}

void check_roles(const Settings& settings) {
    if (settings.kind == Kind::anthropic &&
        (settings.role == Role::judge || settings.degrade_rate > 0)) {
        throw std::invalid_argument("--role judge and --degrade-rate need --kind openai");
    }
    if (settings.role == Role::judge && settings.degrade_rate > 0) {
        throw std::invalid_argument("--degrade-rate applies to --role answer");
    }
    if (settings.role != Role::judge && (settings.judge_garbage || settings.judge_score >= 0)) {
        throw std::invalid_argument("--judge-score and --judge-garbage need --role judge");
    }
}

}  // namespace

std::string_view usage() { return kUsage; }

std::optional<Options> parse_command_line(int argc, char** argv) {
    Options options;
    std::string text(kDefaultText);
    bool have_listen = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            return std::nullopt;
        }
        if (arg == "--fault-hang") {
            options.settings.faults.hang = true;
            continue;
        }
        if (arg == "--judge-garbage") {
            options.settings.judge_garbage = true;
            continue;
        }
        // Both `--name value` and `--name=value`.
        const std::size_t equals = arg.find('=');
        const std::string_view option = arg.substr(0, equals);
        std::string_view value;
        if (equals != std::string_view::npos) {
            value = arg.substr(equals + 1);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            throw std::invalid_argument(std::string(option) + " needs a value");
        }
        apply_option(options, text, option, value);
        have_listen = have_listen || option == "--listen";
    }
    if (!have_listen) {
        throw std::invalid_argument("--listen HOST:PORT is required");
    }
    if (options.tls_cert.empty() != options.tls_key.empty()) {
        throw std::invalid_argument("--tls-cert and --tls-key go together");
    }
    check_roles(options.settings);
    split_words(text, options.settings.words);
    if (options.settings.words.empty()) {
        throw std::invalid_argument("--text needs at least one word");
    }
    return options;
}

}  // namespace turnout::sim
