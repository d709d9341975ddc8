#pragma once
/// The `log:` section of the config, owned by the logging it configures (base/logging.hpp).

#include <string>

namespace turnout::base {

struct LogConfig {
    std::string level = "info";   ///< trace | debug | info | warn | error
    std::string format = "json";  ///< json | text
};

}  // namespace turnout::base
