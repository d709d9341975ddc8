#include "config/config.hpp"

namespace turnout::config {

const ProviderConfig* Config::find_provider(std::string_view name) const {
    for (const auto& provider : providers) {
        if (provider.name == name) return &provider;
    }
    return nullptr;
}

}  // namespace turnout::config
