#include "upstream/providers.hpp"

#include <boost/asio/ssl/context.hpp>
#include <cstdlib>
#include <stdexcept>

#include "upstream/pool.hpp"

namespace turnout::upstream {

std::string required_env(const std::string& name, const std::string& what) {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr || *value == '\0') {
        throw std::runtime_error("environment variable " + name + " (" + what + ") is unset");
    }
    return value;
}

std::shared_ptr<const Providers> Providers::build(std::shared_ptr<const config::Config> config) {
    auto providers = std::make_shared<Providers>();
    providers->config_ = config;
    for (const auto& provider : config->providers) {
        if (!provider.api_key_env.empty()) {
            const std::string key =
                required_env(provider.api_key_env, "api_key_env of provider " + provider.name);
            providers->credentials_[provider.name] =
                provider.kind == config::ProviderKind::openai ? "Bearer " + key : key;
        }
        if (provider.address.tls) {
            providers->tls_[provider.name] = make_client_tls_context(provider);
        }
    }
    return providers;
}

std::string_view Providers::credential(std::string_view provider) const {
    const auto found = credentials_.find(provider);
    return found == credentials_.end() ? std::string_view() : std::string_view(found->second);
}

std::shared_ptr<boost::asio::ssl::context> Providers::tls_context(std::string_view provider) const {
    const auto found = tls_.find(provider);
    return found == tls_.end() ? nullptr : found->second;
}

}  // namespace turnout::upstream
