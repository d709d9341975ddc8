#include "tests/support/shadow_stack.hpp"

#include <signal.h>

#include <utility>

namespace turnout::test {

namespace {

ProviderYaml sim_provider(const std::string& name, const std::string& base_url) {
    ProviderYaml p;
    p.name = name;
    p.base_url = base_url;
    p.api_key_env = GatewayConfig::kSimKeyEnv;
    p.options = {{"timeout", "20s"}, {"connect_timeout", "2s"}, {"first_byte_timeout", "10s"}};
    return p;
}

std::vector<std::string> judge_args(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--role", "judge"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

}  // namespace

ShadowStack::ShadowStack(std::vector<std::string> primary_args,
                         std::vector<std::string> candidate_args,
                         std::vector<std::string> judge_extra)
    : primary_(std::move(primary_args)),
      candidate_(std::move(candidate_args)),
      judge_(judge_args(std::move(judge_extra))) {}

ShadowStack::~ShadowStack() = default;

::testing::AssertionResult ShadowStack::start(const std::function<void(GatewayConfig&)>& tweak,
                                              const std::map<std::string, std::string>& extra_env) {
    for (auto* sim : {&primary_, &candidate_, &judge_}) {
        if (auto ok = sim->start(); !ok) return ok;
    }
    GatewayConfig config;
    config.provider(sim_provider("slow", primary_.base_url()));
    config.provider(sim_provider("fast", candidate_.base_url()));
    config.provider(sim_provider("judge", judge_.base_url()));
    RouteYaml route;
    route.name = kRoute;
    route.primary = {"slow", "slow-model"};
    route.candidate = {"fast", "fast-model"};
    route.timeout = "10s";
    route.shadow.sample_rate = 1.0;
    route.judge = {"judge", kJudgeModel};
    route.promotion.mode = "auto";
    route.promotion.window = 100;
    route.promotion.min_samples = 50;
    route.promotion.threshold = 0.90;
    route.promotion.rollback_threshold = 0.85;
    route.promotion.confidence = 0.95;
    route.promotion.hold = "0s";
    route.promotion.ramp = {100};
    route.promotion.cooldown = "1h";
    config.route(route);
    RouteYaml plain;
    plain.name = kPlainRoute;
    plain.primary = {"slow", "plain-model"};
    config.route(plain);
    config.state_path(state_dir());
    if (tweak) tweak(config);
    yaml_ = config.yaml();
    env_ = extra_env;
    return start_gateway();
}

::testing::AssertionResult ShadowStack::start_gateway() {
    GatewayOptions options;
    options.yaml = yaml_;
    for (const auto& [k, v] : env_) options.env[k] = v;
    gateway_ = std::make_unique<GatewayProcess>(options);
    return gateway_->start();
}

::testing::AssertionResult ShadowStack::restart_gateway() {
    if (!gateway_) return ::testing::AssertionFailure() << "no gateway to restart";
    if (!gateway_->send_signal(SIGTERM)) {
        return ::testing::AssertionFailure() << "cannot send SIGTERM to the gateway";
    }
    auto code = gateway_->wait_exit(Millis(20000));
    if (!code || *code != 0) {
        return ::testing::AssertionFailure()
               << "the gateway did not exit 0 after SIGTERM ("
               << (code ? "exit " + std::to_string(*code) : std::string("still running"))
               << "); log:\n"
               << gateway_->log_text();
    }
    return start_gateway();
}

::testing::AssertionResult ShadowStack::set_candidate_degrade_rate(double rate) {
    auto response = candidate_.request("POST", "/_sim/config", {},
                                       "{\"degrade_rate\":" + std::to_string(rate) + "}");
    if (!response || response->status != 200) {
        return ::testing::AssertionFailure()
               << "POST /_sim/config on the candidate failed: "
               << (response ? std::to_string(response->status) + " " + response->body
                            : std::string("no answer"));
    }
    return ::testing::AssertionSuccess();
}

std::optional<HttpResponse> ShadowStack::ask(const std::string& request_id, bool stream,
                                             Millis timeout) {
    return gateway_->chat(chat_body(kRoute, stream, "Question " + request_id + ": say hello."),
                          {{"x-request-id", request_id}}, timeout);
}

::testing::AssertionResult ShadowStack::send(int count, const std::string& prefix, bool stream,
                                             std::vector<HttpResponse>* responses) {
    for (int i = 0; i < count; ++i) {
        const std::string id = prefix + "-" + std::to_string(i);
        auto response = ask(id, stream);
        if (!response || response->status != 200) {
            return ::testing::AssertionFailure()
                   << "request " << id << " failed: "
                   << (response ? std::to_string(response->status) + " " + response->body
                                : std::string("no answer"));
        }
        if (responses) responses->push_back(std::move(*response));
    }
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult ShadowStack::send_until_state(const std::string& state, int max_requests,
                                                         const std::string& prefix,
                                                         Millis timeout) {
    for (int i = 0; i < max_requests; ++i) {
        if (gateway_->route_state(kRoute) == state) return ::testing::AssertionSuccess();
        const std::string id = prefix + "-" + std::to_string(i);
        auto response = ask(id);
        if (!response || response->status != 200) {
            return ::testing::AssertionFailure()
                   << "request " << id << " failed: "
                   << (response ? std::to_string(response->status) + " " + response->body
                                : std::string("no answer"));
        }
    }
    return gateway_->wait_for_route_state(kRoute, state, timeout);
}

::testing::AssertionResult ShadowStack::wait_for_verdicts(std::size_t count,
                                                          rapidjson::Document& out,
                                                          Millis timeout) {
    std::size_t last = 0;
    auto ok = wait_for(
        [&] {
            out = gateway_->admin_verdicts(kRoute);
            const auto* list = verdict_list(out);
            last = list ? list->Size() : 0;
            return last >= count;
        },
        timeout, "at least " + std::to_string(count) + " verdicts of route chat");
    if (!ok) ok << " (last count: " << last << ")";
    return ok;
}

const rapidjson::Value* verdict_list(const rapidjson::Value& doc) {
    if (!doc.IsObject()) return nullptr;
    const auto* list = json_at(doc, "verdicts");
    return list && list->IsArray() ? list : nullptr;
}

std::size_t count_verdicts(const rapidjson::Value& doc, const std::string& kind) {
    const auto* list = verdict_list(doc);
    if (!list) return 0;
    std::size_t n = 0;
    for (const auto& v : list->GetArray()) {
        if (json_string(v, "verdict") == kind) ++n;
    }
    return n;
}

std::optional<double> json_number(const rapidjson::Value& doc, const std::string& path) {
    const auto* v = json_at(doc, path);
    if (!v || !v->IsNumber()) return std::nullopt;
    return v->GetDouble();
}

}  // namespace turnout::test
