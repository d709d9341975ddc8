#include "tests/support/fixtures.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <tuple>

namespace turnout::test {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Helpers

rapidjson::Document parse_json(const std::string& text) {
    rapidjson::Document doc;
    doc.Parse(text.c_str(), text.size());
    return doc;
}

const rapidjson::Value* json_at(const rapidjson::Value& doc, const std::string& path) {
    const rapidjson::Value* v = &doc;
    std::size_t start = 0;
    while (start <= path.size() && !path.empty()) {
        auto slash = path.find('/', start);
        std::string part =
            path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (v->IsObject()) {
            auto it = v->FindMember(part.c_str());
            if (it == v->MemberEnd()) return nullptr;
            v = &it->value;
        } else if (v->IsArray()) {
            char* end = nullptr;
            unsigned long index = std::strtoul(part.c_str(), &end, 10);
            if (part.empty() || *end != '\0' || index >= v->Size()) return nullptr;
            v = &(*v)[static_cast<rapidjson::SizeType>(index)];
        } else {
            return nullptr;
        }
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return v;
}

std::optional<std::string> json_string(const rapidjson::Value& doc, const std::string& path) {
    const rapidjson::Value* v = json_at(doc, path);
    if (!v || !v->IsString()) return std::nullopt;
    return std::string(v->GetString(), v->GetStringLength());
}

std::string json_to_string(const rapidjson::Value& value) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    value.Accept(writer);
    return std::string(buffer.GetString(), buffer.GetSize());
}

std::string json_quote(const std::string& text) {
    rapidjson::Value v(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
    return json_to_string(v);
}

::testing::AssertionResult wait_for(const std::function<bool()>& condition, Millis timeout,
                                    const std::string& what, Millis interval) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (condition()) return ::testing::AssertionSuccess();
        if (Clock::now() >= deadline) {
            return ::testing::AssertionFailure()
                   << "timed out after " << timeout.count() << " ms waiting for " << what;
        }
        // A bounded wait between polls of external state, not a synchronisation sleep.
        pollfd none{-1, 0, 0};
        ::poll(&none, 1, static_cast<int>(interval.count()));
    }
}

// ---------------------------------------------------------------------------------------------
// TempDir, ClosedPort

TempDir::TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/turnout-it.XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    if (std::getenv("TURNOUT_TEST_KEEP_TMP")) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string TempDir::write_file(const std::string& name, const std::string& content) const {
    std::string full = path_ + "/" + name;
    std::ofstream out(full, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + full);
    return full;
}

ClosedPort::ClosedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw std::runtime_error("ClosedPort: cannot bind");
    }
    port_ = ntohs(addr.sin_port);
}

ClosedPort::~ClosedPort() {
    if (fd_ >= 0) ::close(fd_);
}

// ---------------------------------------------------------------------------------------------
// Listening lines

std::optional<std::uint16_t> listening_port(const std::string& line, const std::string& kind) {
    auto doc = parse_json(line);
    if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
    if (json_string(doc, "msg") != "listening" || json_string(doc, "kind") != kind) {
        return std::nullopt;
    }
    auto listen = json_string(doc, "listen");
    if (!listen) return std::nullopt;
    auto colon = listen->rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    int port = std::atoi(listen->c_str() + colon + 1);
    if (port <= 0 || port > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(port);
}

// ---------------------------------------------------------------------------------------------
// SimulatorProcess

std::string RecordedRequest::header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
}

SimulatorProcess::SimulatorProcess(std::vector<std::string> args) : args_(std::move(args)) {}

SimulatorProcess::~SimulatorProcess() = default;

::testing::AssertionResult SimulatorProcess::start() {
    ProcessOptions options;
    options.argv = {TURNOUT_BIN, "simulate", "--listen", "127.0.0.1:0"};
    options.argv.insert(options.argv.end(), args_.begin(), args_.end());
    process_ = std::make_unique<ChildProcess>(options);
    std::optional<std::uint16_t> port;
    auto line = process_->wait_for_line(
        [&](const std::string& l) {
            port = listening_port(l, "simulator");
            return port.has_value();
        },
        Millis(15000));
    if (!line || !port) {
        return ::testing::AssertionFailure()
               << "simulator did not print its listening line; output:\n"
               << process_->output();
    }
    port_ = *port;
    return ::testing::AssertionSuccess();
}

std::string SimulatorProcess::base_url() const {
    for (const auto& arg : args_) {
        if (arg == "--tls-cert") return "https://localhost:" + std::to_string(port_) + "/v1";
    }
    return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

std::optional<HttpResponse> SimulatorProcess::control(const std::string& method,
                                                      const std::string& target) {
    if (base_url().rfind("https", 0) == 0) return std::nullopt;  // plain client only
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!control_ || !control_->connected()) {
            control_ = std::make_unique<RawConnection>(port_);
            if (!control_->connected()) return std::nullopt;
        }
        // A kept-alive connection the simulator closed in between fails here: retry once on a
        // fresh one (the control calls are idempotent enough for tests).
        if (control_->send_request(method, target, {})) {
            auto response = control_->read_response(kWait);
            if (response) {
                if (to_lower(response->header("connection")) == "close") control_.reset();
                return response;
            }
        }
        control_.reset();
    }
    return std::nullopt;
}

rapidjson::Document SimulatorProcess::stats() {
    auto response = control("GET", "/_sim/stats");
    if (!response || response->status != 200) return parse_json("");
    return parse_json(response->body);
}

std::optional<std::int64_t> SimulatorProcess::stat(const std::string& name) {
    auto doc = stats();
    if (doc.HasParseError()) return std::nullopt;
    const rapidjson::Value* v = json_at(doc, name);
    if (!v || !v->IsInt64()) return std::nullopt;
    return v->GetInt64();
}

std::optional<RecordedRequest> SimulatorProcess::last_request() {
    auto response = control("GET", "/_sim/last_request");
    if (!response || response->status != 200) return std::nullopt;
    auto doc = parse_json(response->body);
    if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
    RecordedRequest r;
    r.method = json_string(doc, "method").value_or("");
    r.target = json_string(doc, "target").value_or("");
    r.body = json_string(doc, "body").value_or("");
    if (const auto* h = json_at(doc, "headers"); h && h->IsObject()) {
        for (auto it = h->MemberBegin(); it != h->MemberEnd(); ++it) {
            if (!it->value.IsString()) continue;
            r.headers[to_lower(it->name.GetString())] = it->value.GetString();
        }
    }
    return r;
}

bool SimulatorProcess::reset() {
    auto response = control("POST", "/_sim/reset");
    return response && response->status / 100 == 2;
}

::testing::AssertionResult SimulatorProcess::wait_for_stat(
    const std::string& name, const std::function<bool(std::int64_t)>& predicate, Millis timeout,
    const std::string& expectation) {
    std::optional<std::int64_t> last;
    auto ok = wait_for(
        [&] {
            last = stat(name);
            return last && predicate(*last);
        },
        timeout, "simulator stat " + name + " " + expectation);
    if (!ok) {
        return ok << " (last value: " << (last ? std::to_string(*last) : "unavailable") << ")";
    }
    return ok;
}

::testing::AssertionResult SimulatorProcess::wait_for_stat(const std::string& name,
                                                           std::int64_t value, Millis timeout) {
    return wait_for_stat(
        name, [value](std::int64_t v) { return v == value; }, timeout,
        "== " + std::to_string(value));
}

std::optional<HttpResponse> SimulatorProcess::request(const std::string& method,
                                                      const std::string& target,
                                                      const Headers& headers,
                                                      const std::string& body) {
    Headers h = headers;
    if (method == "POST") h.emplace_back("Content-Type", "application/json");
    return http_request(port_, method, target, h, body);
}

// ---------------------------------------------------------------------------------------------
// GatewayConfig

GatewayConfig GatewayConfig::for_simulator(const std::string& base_url) {
    GatewayConfig config;
    ProviderYaml sim;
    sim.name = "sim";
    sim.base_url = base_url;
    sim.api_key_env = kSimKeyEnv;
    sim.options = {{"timeout", "20s"}, {"connect_timeout", "5s"}, {"first_byte_timeout", "10s"}};
    config.provider(sim);
    config.route({"smart", "gpt-smart", {"sim", "sim-large"}, {}, {}});
    config.route({"fast", "fast-*", {"sim", "sim-small"}, {}, {}});
    return config;
}

GatewayConfig& GatewayConfig::provider(ProviderYaml p) {
    providers_.push_back(std::move(p));
    return *this;
}

GatewayConfig& GatewayConfig::route(RouteYaml r) {
    routes_.push_back(std::move(r));
    return *this;
}

GatewayConfig& GatewayConfig::provider_option(const std::string& name, const std::string& key,
                                              const std::string& value) {
    for (auto& p : providers_) {
        if (p.name != name) continue;
        for (auto& [k, v] : p.options) {
            if (k == key) {
                v = value;
                return *this;
            }
        }
        p.options.emplace_back(key, value);
        return *this;
    }
    throw std::runtime_error("GatewayConfig: no provider " + name);
}

GatewayConfig& GatewayConfig::limit(const std::string& key, const std::string& value) {
    for (auto& [k, v] : limits_) {
        if (k == key) {
            v = value;
            return *this;
        }
    }
    limits_.emplace_back(key, value);
    return *this;
}

GatewayConfig& GatewayConfig::top_level(const std::string& line) {
    top_level_.push_back(line);
    return *this;
}

GatewayConfig& GatewayConfig::state_path(const std::string& path) {
    state_path_ = path;
    return *this;
}

GatewayConfig& GatewayConfig::client_key(const std::string& name, const std::string& key_env) {
    keys_.emplace_back(name, key_env);
    return *this;
}

GatewayConfig& GatewayConfig::admin_token_env(const std::string& env) {
    admin_token_env_ = env;
    return *this;
}

RouteYaml& GatewayConfig::route_named(const std::string& name) {
    for (auto& r : routes_) {
        if (r.name == name) return r;
    }
    throw std::runtime_error("GatewayConfig: no route " + name);
}

bool PromotionYaml::empty() const {
    return mode.empty() && !window && !min_samples && !threshold && hold.empty() &&
           !rollback_threshold && !confidence && ramp.empty() && step.empty() && cooldown.empty() &&
           !shadow_after_promotion;
}

namespace {

/// A number as YAML: the shortest text that reads back as the same double.
std::string yaml_number(double value) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", value);
    for (int precision = 1; precision <= 17; ++precision) {
        char shorter[32];
        std::snprintf(shorter, sizeof shorter, "%.*g", precision, value);
        if (std::strtod(shorter, nullptr) == value) return shorter;
    }
    return buffer;
}

/// `key: value` pairs of a block (already formatted), written as flow YAML `{k: v, ...}`.
std::string flow_map(const std::vector<std::pair<std::string, std::string>>& members) {
    std::string out = "{";
    const char* sep = "";
    for (const auto& [k, v] : members) {
        out += sep + k + ": " + v;
        sep = ", ";
    }
    return out + "}";
}

std::string shadow_yaml(const ShadowYaml& s) {
    std::vector<std::pair<std::string, std::string>> m;
    if (s.sample_rate) m.emplace_back("sample_rate", yaml_number(*s.sample_rate));
    if (s.max_inflight) m.emplace_back("max_inflight", std::to_string(*s.max_inflight));
    if (s.queue) m.emplace_back("queue", std::to_string(*s.queue));
    return flow_map(m);
}

std::string judge_yaml(const JudgeYaml& j) {
    std::vector<std::pair<std::string, std::string>> m;
    m.emplace_back("provider", j.provider);
    m.emplace_back("model", json_quote(j.model));
    if (!j.prompt_file.empty()) m.emplace_back("prompt_file", json_quote(j.prompt_file));
    if (j.pass_score) m.emplace_back("pass_score", yaml_number(*j.pass_score));
    return flow_map(m);
}

std::string promotion_yaml(const PromotionYaml& p) {
    std::vector<std::pair<std::string, std::string>> m;
    if (!p.mode.empty()) m.emplace_back("mode", p.mode);
    if (p.window) m.emplace_back("window", std::to_string(*p.window));
    if (p.min_samples) m.emplace_back("min_samples", std::to_string(*p.min_samples));
    if (p.threshold) m.emplace_back("threshold", yaml_number(*p.threshold));
    if (!p.hold.empty()) m.emplace_back("hold", p.hold);
    if (p.rollback_threshold) {
        m.emplace_back("rollback_threshold", yaml_number(*p.rollback_threshold));
    }
    if (p.confidence) m.emplace_back("confidence", yaml_number(*p.confidence));
    if (!p.ramp.empty()) {
        std::string ramp = "[";
        const char* sep = "";
        for (auto step : p.ramp) {
            ramp += sep + std::to_string(step);
            sep = ", ";
        }
        m.emplace_back("ramp", ramp + "]");
    }
    if (!p.step.empty()) m.emplace_back("step", p.step);
    if (!p.cooldown.empty()) m.emplace_back("cooldown", p.cooldown);
    if (p.shadow_after_promotion) {
        m.emplace_back("shadow_after_promotion", yaml_number(*p.shadow_after_promotion));
    }
    return flow_map(m);
}

/// `{provider: P, model: "M", weight: W, headers: {...}, body: {...}}` (flow YAML).
std::string target_yaml(const TargetYaml& t) {
    std::string out = "{provider: " + t.provider + ", model: " + json_quote(t.model);
    if (t.weight > 0) out += ", weight: " + std::to_string(t.weight);
    if (!t.headers.empty()) out += ", headers: " + t.headers;
    if (!t.body.empty()) out += ", body: " + t.body;
    return out + "}";
}

}  // namespace

std::string GatewayConfig::yaml() const {
    std::ostringstream y;
    y << "listen: 127.0.0.1:0\n";
    y << "admin:\n  listen: 127.0.0.1:0\n";
    if (!admin_token_env_.empty()) y << "  token_env: " << admin_token_env_ << "\n";
    if (!state_path_.empty()) y << "state:\n  path: " << json_quote(state_path_) << "\n";
    y << "log: {level: info, format: json}\n";
    if (!limits_.empty()) {
        y << "limits:\n";
        for (const auto& [k, v] : limits_) y << "  " << k << ": " << v << "\n";
    }
    if (!keys_.empty()) {
        y << "keys:\n";
        for (const auto& [name, env] : keys_) {
            y << "  - {name: " << json_quote(name) << ", key_env: " << env << "}\n";
        }
    }
    for (const auto& line : top_level_) y << line << "\n";
    y << "providers:\n";
    for (const auto& p : providers_) {
        y << "  " << p.name << ":\n";
        y << "    kind: " << p.kind << "\n";
        y << "    base_url: " << json_quote(p.base_url) << "\n";
        if (!p.api_key_env.empty()) y << "    api_key_env: " << p.api_key_env << "\n";
        for (const auto& [k, v] : p.options) y << "    " << k << ": " << v << "\n";
    }
    y << "routes:\n";
    for (const auto& r : routes_) {
        y << "  - name: " << r.name << "\n";
        if (!r.match_model.empty() || !r.match_headers.empty() || !r.match_keys.empty()) {
            y << "    match:\n";
            if (!r.match_model.empty()) y << "      model: " << json_quote(r.match_model) << "\n";
            if (!r.match_headers.empty()) {
                y << "      headers: {";
                const char* sep = "";
                for (const auto& [name, value] : r.match_headers) {
                    y << sep << name << ": " << json_quote(value);
                    sep = ", ";
                }
                y << "}\n";
            }
            if (!r.match_keys.empty()) {
                y << "      keys: [";
                const char* sep = "";
                for (const auto& key : r.match_keys) {
                    y << sep << json_quote(key);
                    sep = ", ";
                }
                y << "]\n";
            }
        }
        if (!r.primary.provider.empty()) y << "    primary: " << target_yaml(r.primary) << "\n";
        if (!r.targets.empty()) {
            y << "    targets:\n";
            for (const auto& t : r.targets) y << "      - " << target_yaml(t) << "\n";
        }
        if (!r.fallbacks.empty()) {
            y << "    fallbacks:\n";
            for (const auto& f : r.fallbacks) y << "      - " << target_yaml(f) << "\n";
        }
        if (r.retry_attempts >= 0) {
            y << "    retries: {attempts: " << r.retry_attempts;
            if (!r.retry_backoff.empty()) y << ", backoff: " << r.retry_backoff;
            y << "}\n";
        }
        if (!r.timeout.empty()) y << "    timeout: " << r.timeout << "\n";
        if (!r.candidate.provider.empty()) {
            y << "    candidate: " << target_yaml(r.candidate) << "\n";
        }
        if (!r.shadow.empty()) y << "    shadow: " << shadow_yaml(r.shadow) << "\n";
        if (!r.judge.provider.empty()) y << "    judge: " << judge_yaml(r.judge) << "\n";
        if (!r.promotion.empty()) y << "    promotion: " << promotion_yaml(r.promotion) << "\n";
        for (const auto& line : r.extra_lines) y << "    " << line << "\n";
    }
    return y.str();
}

// ---------------------------------------------------------------------------------------------
// GatewayProcess

GatewayProcess::GatewayProcess(GatewayOptions options) : options_(std::move(options)) {}

GatewayProcess::~GatewayProcess() {
    // TURNOUT_TEST_SHOW_LOGS=1 prints each gateway's log when its test ends (debugging aid).
    if (process_ && std::getenv("TURNOUT_TEST_SHOW_LOGS")) {
        std::fprintf(stderr, "---- gateway log (%s)\n%s----\n", config_path_.c_str(),
                     process_->output().c_str());
    }
}

std::string GatewayProcess::with_state_path(std::string yaml) const {
    // Route states go to the test's own temp dir unless the config names a state path.
    if (yaml.find("\nstate:") == std::string::npos && yaml.rfind("state:", 0) != 0) {
        yaml += "state:\n  path: " + json_quote(dir_.path() + "/state") + "\n";
    }
    return yaml;
}

::testing::AssertionResult GatewayProcess::start() {
    std::string yaml = with_state_path(options_.yaml);
    config_path_ = dir_.write_file("turnout.yaml", yaml);
    ProcessOptions p;
    p.argv = {TURNOUT_BIN,  "serve",     "--config",
              config_path_, "--threads", std::to_string(options_.threads)};
    p.env = options_.env;
    p.unset_env = options_.unset_env;
    p.cwd = dir_.path();
    p.max_open_files = options_.max_open_files;
    process_ = std::make_unique<ChildProcess>(p);
    std::optional<std::uint16_t> api;
    std::optional<std::uint16_t> admin;
    auto line = process_->wait_for_line(
        [&](const std::string& l) {
            if (!api) api = listening_port(l, "api");
            if (!admin) admin = listening_port(l, "admin");
            return api && admin;
        },
        options_.start_timeout);
    if (!line) {
        auto exited = process_->wait_exit(Millis(0));
        return ::testing::AssertionFailure()
               << "gateway did not print both listening lines ("
               << (exited ? "exited with " + std::to_string(*exited) : std::string("timeout"))
               << "); config:\n"
               << yaml << "output:\n"
               << process_->output();
    }
    api_port_ = *api;
    admin_port_ = *admin;
    return ::testing::AssertionSuccess();
}

std::vector<std::string> GatewayProcess::log_lines() const {
    return process_ ? process_->lines() : std::vector<std::string>{};
}

std::string GatewayProcess::log_text() const { return process_ ? process_->output() : ""; }

::testing::AssertionResult GatewayProcess::wait_for_log(const std::regex& pattern, Millis timeout,
                                                        std::string* line) {
    auto found = process_->wait_for_line(pattern, timeout);
    if (!found) {
        return ::testing::AssertionFailure()
               << "no gateway log line matched within " << timeout.count() << " ms; log:\n"
               << log_text();
    }
    if (line) *line = *found;
    return ::testing::AssertionSuccess();
}

bool GatewayProcess::send_signal(int signal) { return process_->send_signal(signal); }

void GatewayProcess::rewrite_config(const std::string& yaml) {
    std::string temp = dir_.write_file("turnout.yaml.new", with_state_path(yaml));
    fs::rename(temp, config_path_);
}

std::optional<HttpResponse> GatewayProcess::admin_request(const std::string& method,
                                                          const std::string& target,
                                                          const Headers& headers,
                                                          const std::string& body, Millis timeout) {
    return http_request(admin_port_, method, target, headers, body, timeout);
}

std::optional<HttpResponse> GatewayProcess::admin_get(const std::string& target,
                                                      const std::string& token) {
    Headers headers;
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    return admin_request("GET", target, headers);
}

std::optional<HttpResponse> GatewayProcess::admin_post(const std::string& target,
                                                       const std::string& body,
                                                       const std::string& token) {
    Headers headers;
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return admin_request("POST", target, headers, body);
}

rapidjson::Document GatewayProcess::admin_route(const std::string& name, const std::string& token) {
    rapidjson::Document route;
    auto response = admin_get("/admin/routes", token);
    if (!response || response->status != 200) return parse_json("");
    auto doc = parse_json(response->body);
    const auto* list = doc.HasParseError() ? nullptr : json_at(doc, "routes");
    if (!list || !list->IsArray()) return parse_json("");
    for (const auto& r : list->GetArray()) {
        if (r.IsObject() && json_string(r, "name") == name) {
            route.CopyFrom(r, route.GetAllocator());
            return route;
        }
    }
    return parse_json("");
}

std::string GatewayProcess::route_state(const std::string& name, const std::string& token) {
    auto route = admin_route(name, token);
    if (route.HasParseError()) return "";
    return json_string(route, "state").value_or("");
}

::testing::AssertionResult GatewayProcess::wait_for_route_state(const std::string& name,
                                                                const std::string& state,
                                                                Millis timeout,
                                                                const std::string& token) {
    std::string last;
    auto ok = wait_for(
        [&] {
            auto route = admin_route(name, token);
            last = route.HasParseError() ? std::string("(not listed)") : json_to_string(route);
            return !route.HasParseError() && json_string(route, "state") == state;
        },
        timeout, "route " + name + " in state " + state);
    if (!ok) ok << "; last /admin/routes entry: " << last;
    return ok;
}

rapidjson::Document GatewayProcess::admin_verdicts(const std::string& name, std::size_t limit,
                                                   const std::string& token) {
    auto response =
        admin_get("/admin/routes/" + name + "/verdicts?limit=" + std::to_string(limit), token);
    if (!response || response->status != 200) return parse_json("");
    auto doc = parse_json(response->body);
    const auto* list = doc.HasParseError() ? nullptr : json_at(doc, "verdicts");
    if (!list || !list->IsArray()) return parse_json("");
    return doc;
}

std::optional<HttpResponse> GatewayProcess::reload(const std::string& token, Millis timeout) {
    Headers headers;
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    return admin_request("POST", "/admin/reload", headers, {}, timeout);
}

std::optional<std::string> GatewayProcess::metrics() {
    auto response = admin_request("GET", "/metrics");
    if (!response || response->status != 200) return std::nullopt;
    return response->body;
}

::testing::AssertionResult GatewayProcess::wait_for_metric(
    const std::string& name, const std::map<std::string, std::string>& labels,
    const std::function<bool(double)>& predicate, const std::string& expectation, Millis timeout) {
    std::optional<std::string> last;
    auto ok = wait_for(
        [&] {
            last = metrics();
            return last && predicate(metric_value(*last, name, labels).value_or(0.0));
        },
        timeout, "metric " + name + " " + expectation);
    if (!ok) ok << "; last /metrics:\n" << (last ? *last : std::string("(unavailable)"));
    return ok;
}

std::optional<int> GatewayProcess::wait_exit(Millis timeout) {
    return process_->wait_exit(timeout);
}

std::optional<HttpResponse> GatewayProcess::chat(const std::string& body, const Headers& headers,
                                                 Millis timeout) {
    Headers h = headers;
    h.emplace_back("Content-Type", "application/json");
    return http_request(api_port_, "POST", "/v1/chat/completions", h, body, timeout);
}

std::optional<HttpResponse> GatewayProcess::request(const std::string& method,
                                                    const std::string& target,
                                                    const Headers& headers, const std::string& body,
                                                    Millis timeout) {
    return http_request(api_port_, method, target, headers, body, timeout);
}

std::string chat_body(const std::string& model, bool stream, const std::string& prompt) {
    std::string body = "{\"model\":" + json_quote(model) +
                       ",\"messages\":[{\"role\":\"user\",\"content\":" + json_quote(prompt) + "}]";
    if (stream) body += ",\"stream\":true";
    return body + "}";
}

// ---------------------------------------------------------------------------------------------
// GatewayStack and assertions

::testing::AssertionResult GatewayStack::start(
    const std::function<void(GatewayConfig&)>& tweak,
    const std::map<std::string, std::string>& extra_env) {
    if (auto ok = sim_.start(); !ok) return ok;
    GatewayConfig config = GatewayConfig::for_simulator(sim_.base_url());
    if (tweak) tweak(config);
    GatewayOptions options;
    options.yaml = config.yaml();
    for (const auto& [k, v] : extra_env) options.env[k] = v;
    gateway_ = std::make_unique<GatewayProcess>(options);
    return gateway_->start();
}

::testing::AssertionResult is_openai_error(const std::optional<HttpResponse>& response, int status,
                                           const std::string& code, const std::string& type) {
    if (!response) return ::testing::AssertionFailure() << "no response";
    if (response->status != status) {
        return ::testing::AssertionFailure() << "status " << response->status << ", expected "
                                             << status << "; body: " << response->body;
    }
    auto doc = parse_json(response->body);
    if (doc.HasParseError() || !doc.IsObject()) {
        return ::testing::AssertionFailure() << "body is not a JSON object: " << response->body;
    }
    if (!json_string(doc, "error/message") || !json_string(doc, "error/type")) {
        return ::testing::AssertionFailure()
               << "no error.message / error.type strings: " << response->body;
    }
    if (json_string(doc, "error/code") != code) {
        return ::testing::AssertionFailure()
               << "error.code is not \"" << code << "\": " << response->body;
    }
    if (!type.empty() && json_string(doc, "error/type") != type) {
        return ::testing::AssertionFailure()
               << "error.type is not \"" << type << "\": " << response->body;
    }
    return ::testing::AssertionSuccess();
}

std::string delta_content(const std::string& event_data) {
    auto doc = parse_json(event_data);
    if (doc.HasParseError()) return "";
    return json_string(doc, "choices/0/delta/content").value_or("");
}

namespace {

/// Parses `{a="x",b="y"}` starting at text[pos] == '{'; pos ends after the '}'.
bool parse_labels(std::string_view text, std::size_t& pos,
                  std::map<std::string, std::string>& labels) {
    ++pos;  // '{'
    while (pos < text.size()) {
        while (pos < text.size() && (text[pos] == ' ' || text[pos] == ',')) ++pos;
        if (pos < text.size() && text[pos] == '}') {
            ++pos;
            return true;
        }
        auto eq = text.find('=', pos);
        if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"') {
            return false;
        }
        std::string key(text.substr(pos, eq - pos));
        std::string value;
        pos = eq + 2;
        while (pos < text.size() && text[pos] != '"') {
            if (text[pos] == '\\' && pos + 1 < text.size()) {
                ++pos;
                value += text[pos] == 'n' ? '\n' : text[pos];
            } else {
                value += text[pos];
            }
            ++pos;
        }
        if (pos >= text.size()) return false;
        ++pos;  // closing quote
        labels[key] = value;
    }
    return false;
}

}  // namespace

std::optional<double> metric_value(const std::string& text, const std::string& name,
                                   const std::map<std::string, std::string>& labels) {
    std::optional<double> sum;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] == '#') continue;
        if (line.compare(0, name.size(), name) != 0) continue;
        std::size_t pos = name.size();
        if (pos >= line.size() || (line[pos] != '{' && line[pos] != ' ')) continue;
        std::map<std::string, std::string> found;
        if (line[pos] == '{' && !parse_labels(line, pos, found)) continue;
        bool matches = true;
        for (const auto& [k, v] : labels) {
            auto it = found.find(k);
            if (it == found.end() || it->second != v) {
                matches = false;
                break;
            }
        }
        if (!matches) continue;
        while (pos < line.size() && line[pos] == ' ') ++pos;
        char* end = nullptr;
        double value = std::strtod(line.c_str() + pos, &end);
        if (end == line.c_str() + pos) continue;
        sum = sum.value_or(0.0) + value;
    }
    return sum;
}

// ---------------------------------------------------------------------------------------------
// ResettingUpstream

namespace {

/// A socket listening on 127.0.0.1:0 and its port; throws with `who` in the message.
std::pair<int, std::uint16_t> listen_on_loopback(const char* who) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, 64) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error(std::string(who) + ": cannot listen");
    }
    return {fd, ntohs(addr.sin_port)};
}

/// How reading one request off a fake upstream's connection ended.
enum class RequestRead { complete, incomplete, stopped };

/// Reads one request's head, then Content-Length bytes of body (10 s at most, a guard against
/// a stuck peer), into `body`. `stopped` when `stop_fd` became readable (the test is ending).
RequestRead read_request(int fd, int stop_fd, std::string& body) {
    std::string data;
    std::size_t body_start = std::string::npos;
    std::size_t need = std::string::npos;
    auto deadline = Clock::now() + Millis(10000);
    while (Clock::now() < deadline) {
        if (need == std::string::npos) {
            auto end = data.find("\r\n\r\n");
            if (end != std::string::npos) {
                std::string head = to_lower(data.substr(0, end));
                std::size_t length = 0;
                auto cl = head.find("\r\ncontent-length:");
                if (cl != std::string::npos) {
                    length = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
                }
                body_start = end + 4;
                need = body_start + length;
            }
        }
        if (need != std::string::npos && data.size() >= need) {
            body = data.substr(body_start, need - body_start);
            return RequestRead::complete;
        }
        pollfd in[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if (::poll(in, 2, 100) < 0 && errno != EINTR) break;
        if (in[1].revents != 0) return RequestRead::stopped;
        if (in[0].revents == 0) continue;
        char buffer[8192];
        auto n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        data.append(buffer, static_cast<std::size_t>(n));
    }
    return RequestRead::incomplete;
}

/// Writes all of `bytes`; false when the peer is gone.
bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

void stop_thread(int stop_write_fd, std::thread& thread) {
    char byte = 1;
    if (::write(stop_write_fd, &byte, 1) < 0) {
        // The thread also ends when the pipe closes; nothing more to do.
    }
    if (thread.joinable()) thread.join();
}

/// The accept loop of the hand-written upstreams: one connection at a time, its request read
/// whole, then `handle(fd, read, body)` unless the read was stopped; the connection is closed
/// after it. Ends when `stop_fd` becomes readable.
template <class Handle>
void serve_connections(int listen_fd, int stop_fd, Handle handle) {
    for (;;) {
        pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents != 0) return;
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        std::string body;
        const RequestRead read = read_request(fd, stop_fd, body);
        if (read != RequestRead::stopped) handle(fd, read, body);
        ::close(fd);
        if (read == RequestRead::stopped) return;
    }
}

}  // namespace

ResettingUpstream::ResettingUpstream() {
    std::tie(listen_fd_, port_) = listen_on_loopback("ResettingUpstream");
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
        throw std::runtime_error("ResettingUpstream: cannot make a pipe");
    }
    thread_ = std::thread([this] { serve(); });
}

ResettingUpstream::~ResettingUpstream() {
    stop_thread(stop_pipe_[1], thread_);
    for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1]}) {
        if (fd >= 0) ::close(fd);
    }
}

std::string ResettingUpstream::base_url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

std::int64_t ResettingUpstream::requests() const { return requests_.load(); }

void ResettingUpstream::serve() {
    // Each request is read whole, then answered by a reset.
    serve_connections(listen_fd_, stop_pipe_[0],
                      [this](int fd, RequestRead read, const std::string&) {
                          if (read == RequestRead::complete) requests_.fetch_add(1);
                          linger reset{1, 0};
                          ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
                      });
}

// ---------------------------------------------------------------------------------------------
// GatedUpstream

GatedUpstream::GatedUpstream(std::size_t frames, std::size_t before_gate)
    : frames_(frames), before_gate_(std::min(before_gate, frames)) {
    std::tie(listen_fd_, port_) = listen_on_loopback("GatedUpstream");
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0 || ::pipe2(gate_pipe_, O_CLOEXEC) != 0) {
        throw std::runtime_error("GatedUpstream: cannot make a pipe");
    }
    thread_ = std::thread([this] { serve(); });
}

GatedUpstream::~GatedUpstream() {
    stop_thread(stop_pipe_[1], thread_);
    for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1], gate_pipe_[0], gate_pipe_[1]}) {
        if (fd >= 0) ::close(fd);
    }
}

std::string GatedUpstream::base_url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

::testing::AssertionResult GatedUpstream::wait_for_requests(std::int64_t count,
                                                            Millis timeout) const {
    return wait_for([&] { return requests() >= count; }, timeout,
                    std::to_string(count) + " requests at the gated upstream");
}

::testing::AssertionResult GatedUpstream::wait_for_answers_finished(std::int64_t count,
                                                                    Millis timeout) const {
    return wait_for([&] { return answers_finished() >= count; }, timeout,
                    std::to_string(count) + " finished answers of the gated upstream");
}

void GatedUpstream::open_gate() {
    // Never read: the pipe stays readable, so the gate stays open.
    char byte = 1;
    if (::write(gate_pipe_[1], &byte, 1) < 0) {
        ADD_FAILURE() << "GatedUpstream: cannot open the gate";
    }
}

std::string GatedUpstream::text(std::size_t frames) {
    std::string text;
    for (std::size_t i = 0; i < frames; ++i) {
        text += (i == 0 ? "w" : " w") + std::to_string(i);
    }
    return text;
}

void GatedUpstream::serve() {
    serve_connections(
        listen_fd_, stop_pipe_[0], [this](int fd, RequestRead read, const std::string& body) {
            if (read != RequestRead::complete) return;
            requests_.fetch_add(1);
            auto doc = parse_json(body);
            const std::string model =
                doc.HasParseError() ? std::string() : json_string(doc, "model").value_or("");
            const auto* stream = doc.HasParseError() ? nullptr : json_at(doc, "stream");
            if (answer(fd, model, stream && stream->IsTrue())) {
                finished_.fetch_add(1);
            }
        });
}

bool GatedUpstream::pass_gate(int fd) {
    for (;;) {
        pollfd fds[3] = {
            {gate_pipe_[0], POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}, {fd, POLLRDHUP, 0}};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (fds[1].revents != 0 || fds[2].revents != 0) return false;
        if (fds[0].revents != 0) return true;
    }
}

bool GatedUpstream::answer(int fd, const std::string& model, bool stream) {
    const std::string prefix =
        R"({"id":"chatcmpl-gated","created":1700000000,"model":)" + json_quote(model) + ",";
    if (!stream) {
        if (!pass_gate(fd)) return false;
        const std::string json =
            prefix + R"("object":"chat.completion","choices":[{"index":0,"message":)" +
            R"({"role":"assistant","content":)" + json_quote(text(frames_)) +
            R"(},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":)" +
            std::to_string(frames_) + R"(,"total_tokens":)" + std::to_string(frames_ + 1) + "}}";
        return send_all(fd,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Content-Length: " +
                            std::to_string(json.size()) + "\r\nConnection: close\r\n\r\n" + json);
    }
    auto chunk = [](const std::string& event) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", event.size());
        return size + event + "\r\n";
    };
    auto frame = [&](const std::string& delta, const char* finish_reason) {
        return chunk("data: " + prefix +
                     R"("object":"chat.completion.chunk","choices":[{"index":0,"delta":)" + delta +
                     R"(,"finish_reason":)" + finish_reason + "}]}\n\n");
    };
    auto content = [&](std::size_t i) {
        return frame(R"({"content":)" + json_quote((i == 0 ? "w" : " w") + std::to_string(i)) + "}",
                     "null");
    };
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (std::size_t i = 0; i < before_gate_; ++i) head += content(i);
    if (!send_all(fd, head) || !pass_gate(fd)) return false;
    std::string rest;
    for (std::size_t i = before_gate_; i < frames_; ++i) rest += content(i);
    rest += frame("{}", R"("stop")");
    rest += chunk("data: [DONE]\n\n") + "0\r\n\r\n";
    return send_all(fd, rest);
}

// ---------------------------------------------------------------------------------------------
// TestCa

std::string find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
        auto colon = dirs.find(':', start);
        std::string dir = dirs.substr(start, colon == std::string::npos ? colon : colon - start);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    return "";
}

namespace {

RunResult run_openssl(const std::string& dir, std::vector<std::string> args) {
    ProcessOptions p;
    p.argv = {find_program("openssl")};
    p.argv.insert(p.argv.end(), args.begin(), args.end());
    p.cwd = dir;
    p.env = {{"OPENSSL_CONF", dir + "/openssl.cnf"}};
    return run_command(p, Millis(60000));
}

}  // namespace

TestCa::TestCa() = default;

::testing::AssertionResult TestCa::create() {
    if (find_program("openssl").empty()) {
        return ::testing::AssertionFailure() << "the openssl CLI is not installed";
    }
    // A minimal config of our own: the system one may add extensions that clash with ours.
    dir_.write_file("openssl.cnf",
                    "[req]\n"
                    "distinguished_name = dn\n"
                    "prompt = no\n"
                    "[dn]\n"
                    "CN = turnout test CA\n"
                    "[v3_ca]\n"
                    "basicConstraints = critical, CA:TRUE\n"
                    "keyUsage = critical, keyCertSign, cRLSign\n"
                    "subjectKeyIdentifier = hash\n");
    auto r = run_openssl(dir_.path(), {"req",
                                       "-x509",
                                       "-new",
                                       "-newkey",
                                       "ec",
                                       "-pkeyopt",
                                       "ec_paramgen_curve:prime256v1",
                                       "-nodes",
                                       "-keyout",
                                       "ca.key",
                                       "-out",
                                       "ca.pem",
                                       "-days",
                                       "2",
                                       "-subj",
                                       "/CN=turnout test CA",
                                       "-config",
                                       "openssl.cnf",
                                       "-extensions",
                                       "v3_ca"});
    if (r.exit_code != 0) {
        return ::testing::AssertionFailure() << "openssl req (CA) failed:\n" << r.output;
    }
    ca_file_ = dir_.path() + "/ca.pem";
    ca_key_ = dir_.path() + "/ca.key";
    return ::testing::AssertionSuccess();
}

std::optional<TestCa::Cert> TestCa::issue(const std::string& dns_name, std::string* error) {
    std::string base = "server" + std::to_string(++serial_);
    dir_.write_file(base + ".ext",
                    "basicConstraints = critical, CA:FALSE\n"
                    "keyUsage = critical, digitalSignature, keyEncipherment\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectAltName = DNS:" +
                        dns_name + "\n");
    auto r = run_openssl(
        dir_.path(), {"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj",
                      "/CN=" + dns_name, "-config", "openssl.cnf"});
    if (r.exit_code == 0) {
        r = run_openssl(dir_.path(),
                        {"x509", "-req", "-in", base + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                         "-set_serial", std::to_string(1000 + serial_), "-days", "2", "-out",
                         base + ".pem", "-extfile", base + ".ext"});
    }
    if (r.exit_code != 0) {
        if (error) *error = r.output;
        return std::nullopt;
    }
    return Cert{dir_.path() + "/" + base + ".pem", dir_.path() + "/" + base + ".key"};
}

}  // namespace turnout::test
