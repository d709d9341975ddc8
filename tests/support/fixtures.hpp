#pragma once
/// Integration-test fixtures around the real `turnout` binary: the simulator (a fake OpenAI
/// upstream that records what it receives, like Envoy's FakeUpstream), the gateway, a YAML config
/// builder, temp dirs and a throw-away certificate authority. Every wait takes a timeout and
/// returns ::testing::AssertionResult; nothing sleeps to synchronise.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

namespace turnout::test {

using namespace std::chrono_literals;

/// Generous: CI machines are shared and slow, and a passing test never waits this long.
constexpr Millis kWait{10000};

/// How a test shows that a timeout was applied without timing it: the upstream hangs for good
/// (`--fault-hang`, or a stream paced at one frame per 1000 s), every other timeout that could
/// produce the same answer is set to kNeverTimeout, and the client waits kTimeoutWait for the
/// answer only the timeout under test produces (a 504, a 408, an error frame, a fallback's
/// answer). That answer arriving at all is the proof: a slow machine makes it later, never
/// absent. Lower bounds (not answered before the timeout) may be kept; upper bounds may not.
///
/// kTimeoutWait is far above every timeout a test puts under test (a second at most) and below
/// every default that could answer in its place: client_timeout (30 s), first_byte_timeout,
/// stream_idle_timeout and the route timeout (60 s), the provider timeout (120 s). The drain
/// deadline's default (10 s) is not: a test about draining sets it to kNeverTimeout.
constexpr Millis kTimeoutWait{20000};
/// A duration (YAML) no test ever waits for: for the timeouts not under test.
constexpr const char* kNeverTimeout = "10m";

// ---------------------------------------------------------------------------------------------
// Small helpers

/// Parses JSON; a Document whose HasParseError() is true on failure.
rapidjson::Document parse_json(const std::string& text);
/// `doc` at a '/'-separated path of members and array indices ("choices/0/message/content");
/// nullptr when any step is missing or of the wrong type.
const rapidjson::Value* json_at(const rapidjson::Value& doc, const std::string& path);
/// The string at `path`, or nullopt.
std::optional<std::string> json_string(const rapidjson::Value& doc, const std::string& path);
std::string json_to_string(const rapidjson::Value& value);
/// JSON string literal (with quotes) for embedding into YAML or JSON.
std::string json_quote(const std::string& text);

/// Polls `condition` (every `interval`) until it holds or `timeout` passes.
::testing::AssertionResult wait_for(const std::function<bool()>& condition, Millis timeout,
                                    const std::string& what, Millis interval = Millis(10));

/// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    /// Writes `content` to path()/name and returns the full path.
    std::string write_file(const std::string& name, const std::string& content) const;

  private:
    std::string path_;
};

/// A TCP port on 127.0.0.1 that refuses connections: bound (so nobody else gets it) but never
/// listening.
class ClosedPort {
  public:
    ClosedPort();
    ~ClosedPort();
    ClosedPort(const ClosedPort&) = delete;
    ClosedPort& operator=(const ClosedPort&) = delete;
    std::uint16_t port() const { return port_; }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The simulator

/// What the simulator recorded about the last request it served.
struct RecordedRequest {
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers;  ///< lower-cased names
    std::string body;

    bool has_header(const std::string& name) const { return headers.count(name) > 0; }
    std::string header(const std::string& name) const;
};

/// `turnout simulate --listen 127.0.0.1:0 ARGS...`, port parsed from its listening line.
class SimulatorProcess {
  public:
    explicit SimulatorProcess(std::vector<std::string> args = {});
    ~SimulatorProcess();

    /// Starts the process and waits for its listening line.
    ::testing::AssertionResult start();
    bool started() const { return port_ != 0; }

    std::uint16_t port() const { return port_; }
    /// http://127.0.0.1:PORT/v1 (https://localhost:PORT/v1 with `tls_host`).
    std::string base_url() const;

    /// GET /_sim/stats; the document HasParseError() when the call failed.
    rapidjson::Document stats();
    /// One counter from /_sim/stats; nullopt when the call failed or the field is missing.
    std::optional<std::int64_t> stat(const std::string& name);
    std::optional<RecordedRequest> last_request();
    bool reset();

    ::testing::AssertionResult wait_for_stat(const std::string& name,
                                             const std::function<bool(std::int64_t)>& predicate,
                                             Millis timeout, const std::string& expectation);
    ::testing::AssertionResult wait_for_stat(const std::string& name, std::int64_t value,
                                             Millis timeout = kWait);

    /// Sends a request straight to the simulator (bypassing the gateway).
    std::optional<HttpResponse> request(const std::string& method, const std::string& target,
                                        const Headers& headers = {}, const std::string& body = {});

    ChildProcess& process() { return *process_; }
    std::string output() const { return process_ ? process_->output() : std::string(); }

  private:
    /// Control calls go over one kept-alive connection so they add to `connections_accepted`
    /// at most once.
    std::optional<HttpResponse> control(const std::string& method, const std::string& target);

    std::vector<std::string> args_;
    std::unique_ptr<ChildProcess> process_;
    std::unique_ptr<RawConnection> control_;
    std::uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Gateway configuration

struct ProviderYaml {
    std::string name = "sim";
    std::string kind = "openai";
    std::string base_url;
    std::string api_key_env;  ///< empty = none
    /// Extra keys in insertion order, written as `key: value` (value verbatim YAML).
    std::vector<std::pair<std::string, std::string>> options;
};

/// One upstream model of a route. The members after `model` have defaults, so `{"p", "m"}`
/// still initialises one without -Wmissing-field-initializers.
struct TargetYaml {
    std::string provider;
    std::string model;
    std::uint32_t weight = 0;  ///< written only when > 0 (inside `targets`)
    std::string headers =
        {};                 ///< verbatim flow YAML, e.g. "{anthropic-beta: fast-mode-2026-02-01}"
    std::string body = {};  ///< verbatim flow YAML, e.g. "{speed: fast}"
};

/// A route's `shadow` block; written when any member is set.
struct ShadowYaml {
    std::optional<double> sample_rate = {};
    std::optional<std::uint32_t> max_inflight = {};
    std::optional<std::uint32_t> queue = {};

    bool empty() const { return !sample_rate && !max_inflight && !queue; }
};

/// A route's `judge` block; written when `provider` is not empty.
struct JudgeYaml {
    std::string provider = {};
    std::string model = {};
    std::string prompt_file = {};  ///< empty = absent (the built-in template)
    std::optional<double> pass_score = {};
};

/// A route's `promotion` block; written when any member is set. Durations and the mode are
/// verbatim YAML scalars ("0s", "auto").
struct PromotionYaml {
    std::string mode = {};
    std::optional<std::uint32_t> window = {};
    std::optional<std::uint32_t> min_samples = {};
    std::optional<double> threshold = {};
    std::string hold = {};
    std::optional<double> rollback_threshold = {};
    std::optional<double> confidence = {};
    std::vector<std::uint32_t> ramp = {};  ///< empty = absent
    std::string step = {};
    std::string cooldown = {};
    std::optional<double> shadow_after_promotion = {};

    bool empty() const;
};

struct RouteYaml {
    std::string name;
    std::string match_model;  ///< empty = no `model` in the match block
    TargetYaml primary;       ///< an empty provider = no `primary` (use `targets`)
    std::vector<TargetYaml> fallbacks;
    std::vector<std::string> extra_lines;  ///< verbatim, indented by the builder
    /// `match.headers` (name, value glob), in this order.
    std::vector<std::pair<std::string, std::string>> match_headers = {};
    std::vector<std::string> match_keys = {};  ///< `match.keys`
    std::vector<TargetYaml> targets = {};      ///< weighted split (set `weight` on each)
    int retry_attempts = -1;                   ///< `retries.attempts`; < 0 = no `retries` block
    std::string retry_backoff = {};            ///< `retries.backoff` (with retry_attempts >= 0)
    std::string timeout = {};                  ///< route `timeout`; empty = absent
    TargetYaml candidate = {};                 ///< an empty provider = no `candidate`
    ShadowYaml shadow = {};
    JudgeYaml judge = {};
    PromotionYaml promotion = {};
};

/// Builds a gateway YAML config: listen and admin.listen on 127.0.0.1:0, state in a temp dir,
/// JSON logs at info, and the given providers and routes.
class GatewayConfig {
  public:
    static constexpr const char* kSimKeyEnv = "TURNOUT_TEST_SIM_KEY";
    static constexpr const char* kSimKey = "sk-sim-7f3a9c1e5b2d4f6a8e0c";

    /// One provider `sim` (key from kSimKeyEnv) at `base_url`, a route `smart` (also matched by
    /// model `gpt-smart`) -> sim/sim-large and a route `fast` (glob `fast-*`) -> sim/sim-small.
    static GatewayConfig for_simulator(const std::string& base_url);

    GatewayConfig& provider(ProviderYaml p);
    GatewayConfig& route(RouteYaml r);
    /// A provider option on provider `name` (e.g. "first_byte_timeout", "300ms").
    GatewayConfig& provider_option(const std::string& name, const std::string& key,
                                   const std::string& value);
    GatewayConfig& limit(const std::string& key, const std::string& value);
    GatewayConfig& top_level(const std::string& line);  ///< a verbatim top-level YAML line
    GatewayConfig& state_path(const std::string& path);
    /// A client key `{name: NAME, key_env: ENV}` in `keys:` (no keys = no client auth).
    GatewayConfig& client_key(const std::string& name, const std::string& key_env);
    /// `admin.token_env`.
    GatewayConfig& admin_token_env(const std::string& env);
    /// The route called `name`; throws when there is none.
    RouteYaml& route_named(const std::string& name);

    std::string yaml() const;

    std::vector<ProviderYaml>& providers() { return providers_; }
    std::vector<RouteYaml>& routes() { return routes_; }

  private:
    std::vector<ProviderYaml> providers_;
    std::vector<RouteYaml> routes_;
    std::vector<std::pair<std::string, std::string>> limits_;
    std::vector<std::string> top_level_;
    std::string state_path_;
    std::vector<std::pair<std::string, std::string>> keys_;
    std::string admin_token_env_;
};

// ---------------------------------------------------------------------------------------------
// The gateway

struct GatewayOptions {
    std::string yaml;
    /// Environment of the gateway; by default the simulator key variable is set.
    std::map<std::string, std::string> env = {{GatewayConfig::kSimKeyEnv, GatewayConfig::kSimKey}};
    std::vector<std::string> unset_env;
    int threads = 2;
    Millis start_timeout{15000};
    /// RLIMIT_NOFILE (soft, hard) for the gateway; nullopt = inherit.
    std::optional<std::pair<std::uint64_t, std::uint64_t>> max_open_files = {};
};

/// `turnout serve --config FILE --threads N`; the api and admin ports are parsed from the
/// `"msg":"listening"` lines. With TURNOUT_TEST_SHOW_LOGS set, the log is printed at the end.
class GatewayProcess {
  public:
    explicit GatewayProcess(GatewayOptions options);
    ~GatewayProcess();

    ::testing::AssertionResult start();

    std::uint16_t api_port() const { return api_port_; }
    std::uint16_t admin_port() const { return admin_port_; }
    const std::string& config_path() const { return config_path_; }
    const TempDir& dir() const { return dir_; }

    std::vector<std::string> log_lines() const;
    std::string log_text() const;
    /// The first log line (since start) matching `pattern`.
    ::testing::AssertionResult wait_for_log(const std::regex& pattern, Millis timeout = kWait,
                                            std::string* line = nullptr);

    bool send_signal(int signal);
    std::optional<int> wait_exit(Millis timeout = kWait);

    /// Replaces the config file (same path; written to a temp file and renamed over it, so a
    /// concurrent reader never sees half a file). Adds the same state path as start() unless
    /// the YAML names one. Does not trigger a reload: see reload() and send_signal(SIGHUP).
    void rewrite_config(const std::string& yaml);

    /// A request to the admin port.
    std::optional<HttpResponse> admin_request(const std::string& method, const std::string& target,
                                              const Headers& headers = {},
                                              const std::string& body = {}, Millis timeout = kWait);
    /// GET / POST on the admin port, with `Authorization: Bearer TOKEN` when `token` is not
    /// empty (and `Content-Type: application/json` with a body).
    std::optional<HttpResponse> admin_get(const std::string& target, const std::string& token = {});
    std::optional<HttpResponse> admin_post(const std::string& target, const std::string& body = {},
                                           const std::string& token = {});
    /// Route `name`'s object in GET /admin/routes; HasParseError() when the call failed or the
    /// route is not listed.
    rapidjson::Document admin_route(const std::string& name, const std::string& token = {});
    /// `state` of route `name` in GET /admin/routes; "" when unavailable.
    std::string route_state(const std::string& name, const std::string& token = {});
    /// Polls GET /admin/routes until route `name` is in `state`.
    ::testing::AssertionResult wait_for_route_state(const std::string& name,
                                                    const std::string& state,
                                                    Millis timeout = Millis(20000),
                                                    const std::string& token = {});
    /// GET /admin/routes/NAME/verdicts?limit=LIMIT: a document with a `verdicts` array, or one
    /// that HasParseError() when the call failed or answered something else.
    rapidjson::Document admin_verdicts(const std::string& name, std::size_t limit = 1000,
                                       const std::string& token = {});
    /// POST /admin/reload on the admin port, with `Authorization: Bearer TOKEN` when `token` is
    /// not empty.
    std::optional<HttpResponse> reload(const std::string& token = {}, Millis timeout = kWait);
    /// GET /metrics on the admin port: the body, or nullopt when the call failed or was not 200.
    std::optional<std::string> metrics();
    /// Polls /metrics until the sum of the samples of `name` with (at least) `labels` satisfies
    /// `predicate`. A metric with no matching sample counts as 0.
    ::testing::AssertionResult wait_for_metric(const std::string& name,
                                               const std::map<std::string, std::string>& labels,
                                               const std::function<bool(double)>& predicate,
                                               const std::string& expectation,
                                               Millis timeout = kWait);

    /// POST /v1/chat/completions with a JSON body, one connection.
    std::optional<HttpResponse> chat(const std::string& body, const Headers& headers = {},
                                     Millis timeout = kWait);
    std::optional<HttpResponse> request(const std::string& method, const std::string& target,
                                        const Headers& headers = {}, const std::string& body = {},
                                        Millis timeout = kWait);

    ChildProcess& process() { return *process_; }

  private:
    /// `yaml` plus a state path in the test's temp dir unless it names one.
    std::string with_state_path(std::string yaml) const;

    GatewayOptions options_;
    TempDir dir_;
    std::string config_path_;
    std::unique_ptr<ChildProcess> process_;
    std::uint16_t api_port_ = 0;
    std::uint16_t admin_port_ = 0;
};

/// A chat request body: {"model": MODEL, "messages": [{"role":"user","content": PROMPT}]}.
std::string chat_body(const std::string& model, bool stream = false,
                      const std::string& prompt = "Say hello.");

/// Parses the listening line of `kind` ("api", "admin", "simulator") and returns its port.
std::optional<std::uint16_t> listening_port(const std::string& line, const std::string& kind);

/// A simulator and a gateway in front of it (GatewayConfig::for_simulator): the usual set-up.
class GatewayStack {
  public:
    explicit GatewayStack(std::vector<std::string> sim_args = {}) : sim_(std::move(sim_args)) {}

    /// Starts the simulator, then the gateway with the config `tweak` may edit first.
    ::testing::AssertionResult start(const std::function<void(GatewayConfig&)>& tweak = {},
                                     const std::map<std::string, std::string>& extra_env = {});

    SimulatorProcess& sim() { return sim_; }
    GatewayProcess& gateway() { return *gateway_; }
    std::uint16_t api_port() const { return gateway_->api_port(); }

  private:
    SimulatorProcess sim_;
    std::unique_ptr<GatewayProcess> gateway_;
};

/// `response` has `status` and an OpenAI error body {"error":{"message","type","code"}} with
/// string members and the given `code` (and `type` when not empty).
::testing::AssertionResult is_openai_error(const std::optional<HttpResponse>& response, int status,
                                           const std::string& code, const std::string& type = {});

/// choices[0].delta.content of a streamed chunk ("" when absent).
std::string delta_content(const std::string& event_data);

/// The sum of the samples of metric `name` (Prometheus text format) whose label set contains
/// all of `labels` (other labels may be present); nullopt when no sample matches.
std::optional<double> metric_value(const std::string& text, const std::string& name,
                                   const std::map<std::string, std::string>& labels = {});

// ---------------------------------------------------------------------------------------------
// A misbehaving upstream the simulator cannot imitate

/// An HTTP "upstream" on 127.0.0.1 that reads each request's head and body (Content-Length)
/// and then resets the connection (SO_LINGER 0, an RST) without answering a single byte. The
/// simulator only resets a stream after its head and first frame; this resets before any
/// answer, for streamed requests too. A thread serves one connection at a time.
class ResettingUpstream {
  public:
    ResettingUpstream();
    ~ResettingUpstream();
    ResettingUpstream(const ResettingUpstream&) = delete;
    ResettingUpstream& operator=(const ResettingUpstream&) = delete;

    std::uint16_t port() const { return port_; }
    /// http://127.0.0.1:PORT/v1
    std::string base_url() const;
    /// Complete requests received (each answered by a reset).
    std::int64_t requests() const;

  private:
    void serve();

    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    std::atomic<std::int64_t> requests_{0};
    std::thread thread_;
};

/// An OpenAI chat upstream on 127.0.0.1 whose answers wait at a gate the test opens, so a test
/// can act while an answer is unfinished whatever the machine's speed (the simulator paces its
/// answers by the clock; this one by the test). Each request is read whole. A streamed one
/// (`"stream": true`) gets its head and the first `before_gate` of its `frames` content frames
/// at once; the rest, a finish frame and [DONE] once the gate is open. A non-streamed one gets
/// nothing until the gate opens, then one chat.completion. Answers name the request's `model`
/// and carry text(frames). The gate stays open once opened. A thread serves one connection at
/// a time; each answer ends its connection (`Connection: close`).
class GatedUpstream {
  public:
    explicit GatedUpstream(std::size_t frames = 5, std::size_t before_gate = 1);
    ~GatedUpstream();
    GatedUpstream(const GatedUpstream&) = delete;
    GatedUpstream& operator=(const GatedUpstream&) = delete;

    std::uint16_t port() const { return port_; }
    /// http://127.0.0.1:PORT/v1
    std::string base_url() const;
    /// Complete requests received.
    std::int64_t requests() const { return requests_.load(); }
    /// Answers whose last byte was written.
    std::int64_t answers_finished() const { return finished_.load(); }
    ::testing::AssertionResult wait_for_requests(std::int64_t count, Millis timeout = kWait) const;
    ::testing::AssertionResult wait_for_answers_finished(std::int64_t count,
                                                         Millis timeout = kWait) const;
    /// Lets every answer, waiting or to come, run to its end.
    void open_gate();

    /// The content of an answer of `frames` frames: "w0 w1 w2 ...", one word per frame.
    static std::string text(std::size_t frames);

  private:
    void serve();
    /// Writes the answer to one request; false when the peer went away or the test ended.
    bool answer(int fd, const std::string& model, bool stream);
    /// Waits until the gate is open; false when the peer went away or the test ended.
    bool pass_gate(int fd);

    std::size_t frames_;
    std::size_t before_gate_;
    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    int gate_pipe_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    std::atomic<std::int64_t> requests_{0};
    std::atomic<std::int64_t> finished_{0};
    std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// TLS

/// A throw-away CA made with the `openssl` CLI in its own temp dir (EC P-256, valid 2 days).
class TestCa {
  public:
    TestCa();
    ::testing::AssertionResult create();

    struct Cert {
        std::string cert_file;
        std::string key_file;
    };
    /// A server certificate for DNS:`dns_name` signed by this CA.
    std::optional<Cert> issue(const std::string& dns_name, std::string* error = nullptr);

    const std::string& ca_file() const { return ca_file_; }
    const std::string& dir() const { return dir_.path(); }

  private:
    TempDir dir_;
    std::string ca_file_;
    std::string ca_key_;
    int serial_ = 0;
};

/// Path of an executable found on $PATH, or "".
std::string find_program(const std::string& name);

}  // namespace turnout::test
