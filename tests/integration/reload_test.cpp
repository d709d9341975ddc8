// Hot reload: SIGHUP and POST /admin/reload re-read the config file; a broken file is rejected
// with FILE:LINE:COL errors (logged and counted) while the old config keeps serving; the admin
// token guards /admin/*; in-flight requests finish on the config they started with; and a
// reload storm under load fails no client request.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fixtures.hpp"

namespace turnout::test {
namespace {

constexpr const char* kAdminTokenEnv = "TURNOUT_ADMIN_TOKEN";
constexpr const char* kAdminToken = "adm-7d2f9a4c1e8b3f60";

/// Provider `sim` at `base_url` and one route `chat` -> sim/MODEL.
GatewayConfig config_for(const std::string& base_url, const std::string& model) {
    GatewayConfig config;
    ProviderYaml p;
    p.name = "sim";
    p.base_url = base_url;
    p.api_key_env = GatewayConfig::kSimKeyEnv;
    p.options = {{"timeout", "20s"}, {"connect_timeout", "5s"}, {"first_byte_timeout", "10s"}};
    config.provider(p);
    RouteYaml r;
    r.name = "chat";
    r.primary = {"sim", model};
    config.route(r);
    return config;
}

/// `yaml` with an unknown top-level key on its first line: rejected at 1:1.
std::string broken(const std::string& yaml) { return "bogus_key: 1\n" + yaml; }

/// The model the route `chat` serves now, seen from the client (x-turnout-target) and checked
/// at the upstream; "" on any failure.
std::string served_model(GatewayProcess& gateway, SimulatorProcess& sim,
                         const Headers& headers = {}) {
    auto response = gateway.chat(chat_body("chat"), headers);
    if (!response || response->status != 200) return "";
    auto target = response->header("x-turnout-target");
    auto recorded = sim.last_request();
    if (!recorded) return "";
    auto model = json_string(parse_json(recorded->body), "model").value_or("");
    if (target != "sim/" + model) return "mismatch: header " + target + ", upstream " + model;
    return model;
}

/// `{"status": STATUS, "errors": [...]}`; the errors.
::testing::AssertionResult is_reload_answer(const std::optional<HttpResponse>& response, int status,
                                            const std::string& word,
                                            std::vector<std::string>* errors = nullptr) {
    if (!response) return ::testing::AssertionFailure() << "no answer to the reload";
    if (response->status != status) {
        return ::testing::AssertionFailure() << "status " << response->status << ", expected "
                                             << status << ": " << response->body;
    }
    auto doc = parse_json(response->body);
    if (doc.HasParseError() || !doc.IsObject()) {
        return ::testing::AssertionFailure() << "not a JSON object: " << response->body;
    }
    if (json_string(doc, "status") != word) {
        return ::testing::AssertionFailure()
               << "status is not \"" << word << "\": " << response->body;
    }
    const auto* list = json_at(doc, "errors");
    if (!list || !list->IsArray()) {
        return ::testing::AssertionFailure() << "no errors array: " << response->body;
    }
    for (const auto& e : list->GetArray()) {
        if (!e.IsString()) return ::testing::AssertionFailure() << "non-string error";
        if (errors) errors->emplace_back(e.GetString(), e.GetStringLength());
    }
    return ::testing::AssertionSuccess();
}

class ReloadTest : public ::testing::Test {
  protected:
    ::testing::AssertionResult start(const std::string& model = "model-v1",
                                     const std::function<void(GatewayConfig&)>& tweak = {},
                                     std::map<std::string, std::string> env = {}) {
        if (auto ok = sim_.start(); !ok) return ok;
        GatewayConfig config = config_for(sim_.base_url(), model);
        if (tweak) tweak(config);
        GatewayOptions options;
        options.yaml = config.yaml();
        for (auto& [k, v] : env) options.env[k] = v;
        gateway_ = std::make_unique<GatewayProcess>(options);
        return gateway_->start();
    }

    /// The config file for model `model` (same shape as start()'s).
    std::string yaml_for(const std::string& model,
                         const std::function<void(GatewayConfig&)>& tweak = {}) {
        GatewayConfig config = config_for(sim_.base_url(), model);
        if (tweak) tweak(config);
        return config.yaml();
    }

    ::testing::AssertionResult reloads_counted(double success, double failure) {
        if (auto ok = gateway_->wait_for_metric(
                "turnout_config_reloads_total", {{"result", "success"}},
                [success](double v) { return v == success; },
                "success == " + std::to_string(success));
            !ok) {
            return ok;
        }
        return gateway_->wait_for_metric(
            "turnout_config_reloads_total", {{"result", "failure"}},
            [failure](double v) { return v == failure; }, "failure == " + std::to_string(failure));
    }

    SimulatorProcess sim_{{"--ttft", "0ms", "--tokens", "3"}};
    std::unique_ptr<GatewayProcess> gateway_;
};

TEST_F(ReloadTest, SighupReloadChangesThePrimaryModel) {
    ASSERT_TRUE(start("model-v1"));
    ASSERT_EQ(served_model(*gateway_, sim_), "model-v1");
    gateway_->rewrite_config(yaml_for("model-v2"));
    ASSERT_TRUE(gateway_->send_signal(SIGHUP));
    // SIGHUP is asynchronous: poll until the new model serves.
    std::string last;
    EXPECT_TRUE(wait_for(
        [&] {
            last = served_model(*gateway_, sim_);
            return last == "model-v2";
        },
        kWait, "model-v2 to serve after SIGHUP"))
        << "last: " << last;
    EXPECT_TRUE(reloads_counted(1, 0));
    EXPECT_TRUE(gateway_->process().running());
}

TEST_F(ReloadTest, SighupWithABrokenFileKeepsTheOldConfig) {
    ASSERT_TRUE(start("model-v1"));
    gateway_->rewrite_config(broken(yaml_for("model-v2")));
    ASSERT_TRUE(gateway_->send_signal(SIGHUP));
    EXPECT_TRUE(reloads_counted(0, 1));
    // Logged with FILE:LINE:COL.
    EXPECT_TRUE(gateway_->wait_for_log(std::regex(R"(turnout\.yaml:1:1)")));
    EXPECT_EQ(served_model(*gateway_, sim_), "model-v1");
    EXPECT_TRUE(gateway_->process().running());
    // The file fixed, the next SIGHUP applies it.
    gateway_->rewrite_config(yaml_for("model-v3"));
    ASSERT_TRUE(gateway_->send_signal(SIGHUP));
    EXPECT_TRUE(reloads_counted(1, 1));
    EXPECT_EQ(served_model(*gateway_, sim_), "model-v3");
}

TEST_F(ReloadTest, PostReloadAppliesAValidFileBeforeItAnswers) {
    ASSERT_TRUE(start("model-v1"));
    ASSERT_EQ(served_model(*gateway_, sim_), "model-v1");
    gateway_->rewrite_config(yaml_for("model-v2"));
    std::vector<std::string> errors;
    EXPECT_TRUE(is_reload_answer(gateway_->reload(), 200, "reloaded", &errors));
    EXPECT_TRUE(errors.empty());
    // Visible on the very next request: no polling.
    EXPECT_EQ(served_model(*gateway_, sim_), "model-v2");
    EXPECT_TRUE(reloads_counted(1, 0));
}

TEST_F(ReloadTest, PostReloadRejectsABrokenFileAndTheOldConfigServes) {
    ASSERT_TRUE(start("model-v1"));
    gateway_->rewrite_config(broken(yaml_for("model-v2")));
    std::vector<std::string> errors;
    EXPECT_TRUE(is_reload_answer(gateway_->reload(), 400, "rejected", &errors));
    ASSERT_FALSE(errors.empty());
    const std::regex located(R"(^(.+):(\d+):(\d+): .+)");
    for (const auto& e : errors) EXPECT_TRUE(std::regex_match(e, located)) << e;
    EXPECT_EQ(errors[0].rfind(gateway_->config_path() + ":1:1: ", 0), 0u)
        << "FILE as given on the command line, line 1, column 1: " << errors[0];
    EXPECT_EQ(served_model(*gateway_, sim_), "model-v1");
    EXPECT_TRUE(gateway_->wait_for_log(std::regex(R"(turnout\.yaml:1:1)")))
        << "a rejected reload is logged";
    EXPECT_TRUE(reloads_counted(0, 1));
}

TEST_F(ReloadTest, AFifoOrDeviceInPlaceOfTheConfigIsRefusedAndLaterReloadsWork) {
    ASSERT_TRUE(start("model-v1"));
    const std::string path = gateway_->config_path();
    // A FIFO would block the reload thread forever; /dev/zero would grow the process without
    // bound. Both are refused at once and the running config stays.
    for (const bool fifo : {true, false}) {
        ASSERT_EQ(::unlink(path.c_str()), 0);
        if (fifo) {
            ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
        } else {
            ASSERT_EQ(::symlink("/dev/zero", path.c_str()), 0);
        }
        std::vector<std::string> errors;
        EXPECT_TRUE(is_reload_answer(gateway_->reload(), 400, "rejected", &errors));
        ASSERT_FALSE(errors.empty());
        EXPECT_NE(errors[0].find("not a regular file"), std::string::npos) << errors[0];
        EXPECT_EQ(served_model(*gateway_, sim_), "model-v1");
    }
    ASSERT_EQ(::unlink(path.c_str()), 0);
    gateway_->rewrite_config(yaml_for("model-v2"));
    EXPECT_TRUE(is_reload_answer(gateway_->reload(), 200, "reloaded"));
    EXPECT_EQ(served_model(*gateway_, sim_), "model-v2");
    EXPECT_TRUE(reloads_counted(1, 2));
}

TEST_F(ReloadTest, PostReloadPointsAtABadCrossReference) {
    ASSERT_TRUE(start("model-v1"));
    std::string yaml = yaml_for(
        "model-v2", [](GatewayConfig& c) { c.routes()[0].primary.provider = "no-such-provider"; });
    // The error names the line of the bad provider name.
    auto pos = yaml.find("no-such-provider");
    ASSERT_NE(pos, std::string::npos);
    int line = 1;
    for (std::size_t i = 0; i < pos; ++i) line += yaml[i] == '\n' ? 1 : 0;
    gateway_->rewrite_config(yaml);
    std::vector<std::string> errors;
    EXPECT_TRUE(is_reload_answer(gateway_->reload(), 400, "rejected", &errors));
    ASSERT_FALSE(errors.empty());
    EXPECT_EQ(errors[0].rfind(gateway_->config_path() + ":" + std::to_string(line) + ":", 0), 0u)
        << "expected line " << line << ": " << errors[0];
    EXPECT_EQ(served_model(*gateway_, sim_), "model-v1");
    // A valid file afterwards is applied: the rejected one left nothing behind.
    gateway_->rewrite_config(yaml_for("model-v3"));
    EXPECT_TRUE(is_reload_answer(gateway_->reload(), 200, "reloaded"));
    EXPECT_EQ(served_model(*gateway_, sim_), "model-v3");
    EXPECT_TRUE(reloads_counted(1, 1));
}

TEST_F(ReloadTest, AdminTokenGuardsAdminEndpointsOnly) {
    ASSERT_TRUE(start("model-v1", [](GatewayConfig& c) { c.admin_token_env(kAdminTokenEnv); },
                      {{kAdminTokenEnv, kAdminToken}}));
    gateway_->rewrite_config(
        yaml_for("model-v2", [](GatewayConfig& c) { c.admin_token_env(kAdminTokenEnv); }));

    auto no_token = gateway_->reload();
    ASSERT_TRUE(no_token);
    EXPECT_EQ(no_token->status, 401) << no_token->body;
    auto wrong = gateway_->reload("adm-wrong-token");
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 401) << wrong->body;
    auto basic = gateway_->admin_request("POST", "/admin/reload",
                                         {{"Authorization", std::string("Basic ") + kAdminToken}});
    ASSERT_TRUE(basic);
    EXPECT_EQ(basic->status, 401) << basic->body;
    auto routes = gateway_->admin_request("GET", "/admin/routes");
    ASSERT_TRUE(routes);
    EXPECT_EQ(routes->status, 401) << "every /admin/* path needs the token: " << routes->body;
    EXPECT_EQ(served_model(*gateway_, sim_), "model-v1") << "a refused reload changed the config";

    EXPECT_TRUE(is_reload_answer(gateway_->reload(kAdminToken), 200, "reloaded"));
    EXPECT_EQ(served_model(*gateway_, sim_), "model-v2");

    // Health and metrics stay open for probes and scrapers.
    for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
        auto response = gateway_->admin_request("GET", path);
        ASSERT_TRUE(response) << path;
        EXPECT_EQ(response->status, 200) << path << ": " << response->body;
    }
    // The admin token is not a client credential concern: the API needs none here.
    auto chat = gateway_->chat(chat_body("chat"));
    ASSERT_TRUE(chat);
    EXPECT_EQ(chat->status, 200);
    for (const auto& line : gateway_->log_lines()) {
        EXPECT_EQ(line.find(kAdminToken), std::string::npos) << "admin token in: " << line;
    }
}

TEST(ReloadStreamTest, AnInFlightStreamFinishesOnTheConfigItStartedWith) {
    // The old config's upstream holds its stream after the first frame until the test opens
    // its gate, so the reload provably happens mid-stream, however slow the machine; the new
    // config's upstream is the simulator.
    constexpr std::size_t kFrames = 60;
    GatedUpstream old_upstream(kFrames, 1);
    SimulatorProcess sim({"--ttft", "0ms"});
    ASSERT_TRUE(sim.start());
    GatewayOptions options;
    options.yaml = config_for(old_upstream.base_url(), "model-v1").yaml();
    GatewayProcess gateway(options);
    ASSERT_TRUE(gateway.start());

    RawConnection client(gateway.api_port());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.send_request("POST", "/v1/chat/completions",
                                    {{"Content-Type", "application/json"}},
                                    chat_body("chat", true)));
    SseStreamReader reader(client);
    auto head = reader.read_head(kWait);
    ASSERT_TRUE(head);
    ASSERT_EQ(head->status, 200);
    EXPECT_EQ(head->header("x-turnout-target"), "sim/model-v1");
    auto first = reader.next_event(kWait);
    ASSERT_TRUE(first) << reader.body_so_far();

    gateway.rewrite_config(config_for(sim.base_url(), "model-v2").yaml());
    EXPECT_TRUE(is_reload_answer(gateway.reload(), 200, "reloaded"));

    // A new request uses the new config while the old stream is still running.
    auto fresh = gateway.chat(chat_body("chat"), {{"x-sim-tokens", "1"}});
    ASSERT_TRUE(fresh);
    EXPECT_EQ(fresh->status, 200) << fresh->body;
    EXPECT_EQ(fresh->header("x-turnout-target"), "sim/model-v2");
    EXPECT_EQ(sim.stat("requests"), 1);
    EXPECT_EQ(old_upstream.answers_finished(), 0) << "the old stream ended before the reload";

    // The old stream runs to its end, from the old target.
    old_upstream.open_gate();
    std::vector<std::string> events{*first};
    auto rest = reader.read_all(kWait);
    events.insert(events.end(), rest.begin(), rest.end());
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "[DONE]") << reader.body_so_far();
    int content_frames = 0;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        auto doc = parse_json(events[i]);
        ASSERT_FALSE(doc.HasParseError()) << events[i];
        EXPECT_FALSE(json_at(doc, "error")) << events[i];
        EXPECT_EQ(json_string(doc, "model"), "model-v1") << events[i];
        if (!delta_content(events[i]).empty()) ++content_frames;
    }
    EXPECT_EQ(content_frames, static_cast<int>(kFrames)) << reader.body_so_far();
    EXPECT_TRUE(old_upstream.wait_for_answers_finished(1));
    EXPECT_EQ(old_upstream.requests(), 1) << "the new config's request reached the old upstream";
}

// The issue's "reload under load": a bounded loopback load on kept-alive connections while the
// config is reloaded 20 times, every other time with a broken file. No client request may fail.
TEST_F(ReloadTest, TwentyReloadsUnderLoadFailNoRequest) {
    ASSERT_TRUE(start("model-even"));
    constexpr int kThreads = 4;
    constexpr int kReloads = 20;
    constexpr int kPerReload = 30;  // requests completed between two reloads
    std::atomic<bool> stop{false};
    std::atomic<std::int64_t> completed{0};
    std::atomic<std::int64_t> failed{0};
    std::mutex failures_mutex;
    std::vector<std::string> failures;  // the first few, for the message
    const auto hard_stop = Clock::now() + Millis(60000);

    auto load = [&](int thread_index) {
        std::unique_ptr<RawConnection> connection;
        std::int64_t n = 0;
        while (!stop.load() && Clock::now() < hard_stop) {
            if (!connection) {
                connection = std::make_unique<RawConnection>(gateway_->api_port());
                if (!connection->connected()) {
                    failed.fetch_add(1);
                    std::lock_guard lock(failures_mutex);
                    if (failures.size() < 10) failures.push_back("connect: " + connection->error());
                    connection.reset();
                    continue;
                }
            }
            const std::string id =
                "load-" + std::to_string(thread_index) + "-" + std::to_string(n++);
            std::optional<HttpResponse> response;
            // 10 ms at the upstream: requests are in flight whenever a reload happens.
            if (connection->send_request("POST", "/v1/chat/completions",
                                         {{"Content-Type", "application/json"},
                                          {"x-request-id", id},
                                          {"x-sim-ttft-ms", "10"}},
                                         chat_body("chat"))) {
                response = connection->read_response(kWait);
            }
            if (!response || response->status != 200) {
                failed.fetch_add(1);
                std::lock_guard lock(failures_mutex);
                if (failures.size() < 10) {
                    failures.push_back(
                        id + ": " +
                        (response ? std::to_string(response->status) + " " + response->body
                                  : "no response (" + connection->error() + ")"));
                }
                connection.reset();
                continue;
            }
            completed.fetch_add(1);
            if (to_lower(response->header("connection")) == "close") connection.reset();
        }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) threads.emplace_back(load, i);

    int accepted = 0;
    int rejected = 0;
    std::vector<std::string> unexpected;
    // Load is flowing before the first reload.
    bool flowing = static_cast<bool>(wait_for(
        [&] { return completed.load() >= 20 || failed.load() > 0; }, kWait, "the load to start"));
    std::string last_valid_model = "model-even";
    for (int i = 0; flowing && i < kReloads; ++i) {
        const bool valid = i % 2 == 0;
        // Valid files alternate the primary model, so every accepted reload changes something.
        const std::string model = (i / 2) % 2 == 0 ? "model-odd" : "model-even";
        gateway_->rewrite_config(valid ? yaml_for(model) : broken(yaml_for(model)));
        if (valid) last_valid_model = model;
        auto answer = gateway_->reload();
        if (answer && answer->status == 200) {
            ++accepted;
        } else if (answer && answer->status == 400) {
            ++rejected;
        } else {
            unexpected.push_back(answer ? std::to_string(answer->status) + " " + answer->body
                                        : "no answer");
        }
        // Let requests run on each config before the next reload (about 2 s in all).
        const auto before = completed.load();
        if (!wait_for([&] { return completed.load() >= before + kPerReload || failed.load() > 0; },
                      kWait, "requests after reload " + std::to_string(i))) {
            break;
        }
    }
    stop = true;
    for (auto& t : threads) t.join();

    EXPECT_TRUE(flowing);
    EXPECT_EQ(failed.load(), 0) << "failed client requests, e.g.: "
                                << (failures.empty() ? std::string() : failures.front());
    for (const auto& f : failures) ADD_FAILURE() << f;
    EXPECT_GE(completed.load(), 20 + kReloads * kPerReload);
    EXPECT_EQ(accepted, kReloads / 2);
    EXPECT_EQ(rejected, kReloads / 2);
    for (const auto& u : unexpected) ADD_FAILURE() << "unexpected reload answer: " << u;
    EXPECT_TRUE(reloads_counted(kReloads / 2, kReloads / 2));
    // The last valid file serves.
    EXPECT_EQ(served_model(*gateway_, sim_), last_valid_model);
    EXPECT_TRUE(gateway_->process().running());
}

}  // namespace
}  // namespace turnout::test
