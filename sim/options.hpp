#pragma once
/// `turnout simulate`'s command line: how requests are answered (Settings) and where the
/// simulator listens.

#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "sim/state.hpp"

namespace turnout::sim {

struct Options {
    Settings settings;
    boost::asio::ip::tcp::endpoint listen;
    unsigned threads = 2;
    std::string tls_cert;
    std::string tls_key;
};

/// argv[0] is "simulate". nullopt: --help was asked for. Throws std::invalid_argument for a bad
/// command line (shown with the usage).
std::optional<Options> parse_command_line(int argc, char** argv);

/// The --help text.
std::string_view usage();

}  // namespace turnout::sim
