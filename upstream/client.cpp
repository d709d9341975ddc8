#include "upstream/client.hpp"

namespace turnout::upstream {

Client::Client(asio::any_io_executor executor, unsigned sharers)
    : executor_(std::move(executor)), sharers_(std::max(1u, sharers)) {}

std::shared_ptr<UpstreamPool> Client::make_pool(const config::ProviderConfig& provider) const {
    const unsigned share = (provider.max_connections + sharers_ - 1) / sharers_;
    return std::make_shared<UpstreamPool>(
        executor_, provider, providers_ ? providers_->tls_context(provider.name) : nullptr, share);
}

void Client::update(std::shared_ptr<const Providers> providers) {
    providers_ = std::move(providers);
    std::map<std::string, std::shared_ptr<UpstreamPool>, std::less<>> next;
    for (const auto& provider : providers_->config().providers) {
        const auto existing = pools_.find(provider.name);
        if (existing != pools_.end() &&
            same_connection_settings(existing->second->provider(), provider)) {
            next[provider.name] = existing->second;
        } else {
            next[provider.name] = make_pool(provider);
        }
    }
    pools_ = std::move(next);
}

std::shared_ptr<UpstreamPool> Client::pool_for(const config::ProviderConfig& provider) {
    auto& pool = pools_[provider.name];
    if (!pool || !same_connection_settings(pool->provider(), provider)) pool = make_pool(provider);
    return pool;
}

CallPlan Client::plan_for(const config::TargetConfig& target) {
    CallPlan plan;
    plan.provider = *providers_->config().find_provider(target.provider);
    plan.target = target;
    plan.credential = std::string(providers_->credential(target.provider));
    plan.pool = pool_for(plan.provider);
    return plan;
}

config::TargetConfig judge_target(const config::JudgeConfig& judge) {
    config::TargetConfig target;
    target.provider = judge.provider;
    target.model = judge.model;
    target.extra_body_json = judge.extra_body_json;
    return target;
}

}  // namespace turnout::upstream
