// `turnout eval` end to end: real `turnout eval` processes against three `turnout simulate`
// processes, a primary (`slow`), a candidate (`fast`, degraded with --degrade-rate: a stable
// share of prompts gets ` [degraded]`) and a judge (--role judge: 100 when B == A, 97 when they
// differ, 40 when B is marked [degraded]; --judge-garbage answers prose without JSON).
//
// A good fast candidate exits 0 with "switch"; a poor one exits 1; a garbage judge gives error
// verdicts and exit 2; report.md and verdicts.jsonl hold the numbers the simulators imply;
// a rerun on the same --out resumes without sending anything twice; broken prompt lines are
// reported with their numbers and the rest evaluated; bad configs and routes exit 2.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/shadow_stack.hpp"  // json_number

namespace turnout::test {
namespace {

constexpr Millis kEvalTimeout{120000};
constexpr double kPrimaryInput = 15.0;  // $ per million tokens
constexpr double kPrimaryOutput = 75.0;
constexpr double kCandidateInput = 0.6;
constexpr double kCandidateOutput = 2.4;

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// `count` distinct prompts, one per line (without `model`, as the contract allows).
std::string prompt_lines(int count, int first = 0) {
    std::string text;
    for (int i = first; i < first + count; ++i) {
        text += R"({"messages":[{"role":"system","content":"Be brief."},)"
                R"({"role":"user","content":"Question )" +
                std::to_string(i) + R"(: what does item )" + std::to_string(i) +
                R"( do?"}],"max_tokens":64})" + "\n";
    }
    return text;
}

ProviderYaml priced_provider(const std::string& name, const std::string& base_url, double input,
                             double output) {
    ProviderYaml p;
    p.name = name;
    p.base_url = base_url;
    p.api_key_env = GatewayConfig::kSimKeyEnv;
    p.options = {{"timeout", "20s"},
                 {"price", "{input_per_mtok: " + std::to_string(input) +
                               ", output_per_mtok: " + std::to_string(output) + "}"}};
    return p;
}

class EvalTest : public ::testing::Test {
  protected:
    /// Starts the three simulators: the primary answers after 30 ms, the candidate at once.
    void start(std::vector<std::string> candidate_args, std::vector<std::string> judge_args = {},
               const std::string& judge_yaml = {}) {
        primary_ = std::make_unique<SimulatorProcess>(std::vector<std::string>{"--ttft", "30ms"});
        candidate_ = std::make_unique<SimulatorProcess>(std::move(candidate_args));
        judge_args.insert(judge_args.begin(), {"--role", "judge"});
        judge_ = std::make_unique<SimulatorProcess>(std::move(judge_args));
        for (auto* sim : {primary_.get(), candidate_.get(), judge_.get()}) {
            ASSERT_TRUE(sim->start());
        }
        started_ = true;
        GatewayConfig c = config();
        if (!judge_yaml.empty()) {
            c.route_named("chat").judge = {};
            c.route_named("chat").extra_lines.push_back("judge: " + judge_yaml);
        }
        dir_.write_file("eval.yaml", c.yaml());
    }

    /// Providers slow, fast and judge; route `chat` slow/slow-model -> fast/fast-model, judged
    /// by judge/judge-model at the default pass_score 95, threshold 0.90 against 0.85.
    GatewayConfig config() const {
        GatewayConfig config;
        config.provider(
            priced_provider("slow", primary_->base_url(), kPrimaryInput, kPrimaryOutput));
        config.provider(
            priced_provider("fast", candidate_->base_url(), kCandidateInput, kCandidateOutput));
        config.provider(priced_provider("judge", judge_->base_url(), 3.0, 15.0));
        RouteYaml route;
        route.name = "chat";
        route.primary = {"slow", "slow-model"};
        route.candidate = {"fast", "fast-model"};
        route.judge = {"judge", "judge-model"};
        route.timeout = "10s";
        config.route(route);
        RouteYaml plain;
        plain.name = "plain";
        plain.primary = {"slow", "slow-model"};
        config.route(plain);
        return config;
    }

    /// `turnout eval --config eval.yaml --route chat --prompts PROMPTS --out out ARGS...`, run in
    /// the temp dir (so file names in messages are as given).
    RunResult eval(const std::vector<std::string>& extra = {},
                   const std::string& prompts = "prompts.jsonl") {
        ProcessOptions p;
        p.argv = {TURNOUT_BIN, "eval",      "--config", "eval.yaml", "--route",
                  "chat",      "--prompts", prompts,    "--out",     "out"};
        p.argv.insert(p.argv.end(), extra.begin(), extra.end());
        p.cwd = dir_.path();
        p.env[GatewayConfig::kSimKeyEnv] = GatewayConfig::kSimKey;
        return run_command(p, kEvalTimeout);
    }

    std::string out(const std::string& name) const {
        return read_text(dir_.path() + "/out/" + name);
    }

    /// The records of out/verdicts.jsonl; fails the test on a line that is not a JSON object.
    std::vector<rapidjson::Document> verdicts() const {
        std::vector<rapidjson::Document> docs;
        std::istringstream lines(out("verdicts.jsonl"));
        for (std::string line; std::getline(lines, line);) {
            if (line.empty()) continue;
            docs.push_back(parse_json(line));
            EXPECT_TRUE(docs.back().IsObject()) << line;
        }
        return docs;
    }

    std::int64_t requests(SimulatorProcess& sim) { return sim.stat("requests").value_or(-1); }

    TempDir dir_;
    bool started_ = false;
    std::unique_ptr<SimulatorProcess> primary_;
    std::unique_ptr<SimulatorProcess> candidate_;
    std::unique_ptr<SimulatorProcess> judge_;
};

std::int64_t line_of(const rapidjson::Value& doc) {
    return static_cast<std::int64_t>(json_number(doc, "line_number").value_or(-1));
}

std::size_t count_with(const std::vector<rapidjson::Document>& docs, const std::string& verdict) {
    std::size_t count = 0;
    for (const auto& doc : docs) count += json_string(doc, "verdict") == verdict ? 1 : 0;
    return count;
}

TEST_F(EvalTest, GoodFastCandidateSwitches) {
    start({"--degrade-rate", "0"});
    ASSERT_TRUE(started_);
    dir_.write_file("prompts.jsonl", prompt_lines(60));
    const RunResult result = eval();
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_TRUE(std::regex_search(result.output, std::regex("\nverdict: +switch: ")))
        << result.output;
    EXPECT_NE(result.output.find("100.0% (60 pass, 0 fail, 0 errors"), std::string::npos)
        << result.output;
    // 60 straight passes: 3.430 of the 3.493 the gateway's first flip test needs (62 passes);
    // the Wilson bound carries the verdict.
    EXPECT_NE(result.output.find("sequential test:  undecided (statistic 3.430"), std::string::npos)
        << result.output;
    EXPECT_EQ(requests(*primary_), 60);
    EXPECT_EQ(requests(*candidate_), 60);
    EXPECT_EQ(requests(*judge_), 60);

    // The candidate got its own model name (the prompts have none).
    const auto last = candidate_->last_request();
    ASSERT_TRUE(last);
    const auto body = parse_json(last->body);
    EXPECT_EQ(json_string(body, "model"), "fast-model");

    const auto docs = verdicts();
    ASSERT_EQ(docs.size(), 60u);
    std::set<std::int64_t> lines;
    for (const auto& doc : docs) {
        lines.insert(line_of(doc));
        EXPECT_EQ(json_number(doc, "score"), 100.0);  // identical answers
        EXPECT_EQ(json_string(doc, "verdict"), "pass");
        EXPECT_GE(json_number(doc, "primary_latency_ms").value_or(0), 30.0);
        EXPECT_EQ(json_number(doc, "primary_ttft_ms"), json_number(doc, "primary_latency_ms"));
        // Cost is the provider's price times the recorded tokens.
        const double in = json_number(doc, "candidate_input_tokens").value_or(-1);
        const double outp = json_number(doc, "candidate_output_tokens").value_or(-1);
        EXPECT_EQ(outp, 16);  // the simulator's default answer length
        EXPECT_GT(in, 0);
        EXPECT_NEAR(json_number(doc, "candidate_cost_usd").value_or(-1),
                    (in * kCandidateInput + outp * kCandidateOutput) / 1e6, 1e-12);
        const double pin = json_number(doc, "primary_input_tokens").value_or(-1);
        const double pout = json_number(doc, "primary_output_tokens").value_or(-1);
        EXPECT_NEAR(json_number(doc, "primary_cost_usd").value_or(-1),
                    (pin * kPrimaryInput + pout * kPrimaryOutput) / 1e6, 1e-12);
    }
    EXPECT_EQ(lines.size(), 60u);
    EXPECT_EQ(*lines.begin(), 1);
    EXPECT_EQ(*lines.rbegin(), 60);

    const std::string report = out("report.md");
    EXPECT_NE(report.find("**Verdict: switch**"), std::string::npos) << report;
    EXPECT_NE(report.find("| pass rate | 100.0% (60 pass"), std::string::npos) << report;
    EXPECT_NE(report.find("projected saving"), std::string::npos);
    const std::string svg = out("scores.svg");
    EXPECT_TRUE(svg.starts_with("<svg")) << svg;
    EXPECT_NE(svg.find("id=\"pass-line\""), std::string::npos);
    EXPECT_NE(svg.find(">60</text>"), std::string::npos);  // all 60 in the 95-100 bin
}

// eval asks the judge the way the shadow loop does: both orders with `swap`, `judge.body`
// applied (null removes a field), answers cut to `max_answer_bytes`.
TEST_F(EvalTest, JudgeSwapBodyAndAnswerBudgetApply) {
    start({"--degrade-rate", "0"}, {},
          "{provider: judge, model: judge-model, swap: true, max_answer_bytes: 8B, "
          "body: {temperature: null, seed: 7}}");
    ASSERT_TRUE(started_);
    dir_.write_file("prompts.jsonl", prompt_lines(5));
    const RunResult result = eval();
    EXPECT_EQ(requests(*judge_), 10) << "two judge calls per pair with swap\n" << result.output;
    const auto docs = verdicts();
    ASSERT_EQ(docs.size(), 5u) << result.output;
    const auto last = judge_->last_request();
    ASSERT_TRUE(last);
    const auto request = parse_json(last->body);
    EXPECT_FALSE(request.HasMember("temperature")) << last->body;
    EXPECT_EQ(json_number(request, "seed"), 7.0) << last->body;
    EXPECT_NE(last->body.find("[... truncated by turnout: 8 of "), std::string::npos) << last->body;
}

TEST_F(EvalTest, PoorCandidateDoesNotSwitch) {
    start({"--degrade-rate", "0.5"});
    ASSERT_TRUE(started_);
    dir_.write_file("prompts.jsonl", prompt_lines(60));
    const RunResult result = eval({"--concurrency", "8"});
    ASSERT_EQ(result.exit_code, 1) << result.output;
    EXPECT_TRUE(std::regex_search(result.output, std::regex("\nverdict: +do not switch: ")))
        << result.output;

    const auto degraded = candidate_->stat("degraded_answers");
    ASSERT_TRUE(degraded);
    ASSERT_GT(*degraded, 0);
    const auto docs = verdicts();
    ASSERT_EQ(docs.size(), 60u);
    const auto fails = static_cast<std::int64_t>(count_with(docs, "fail"));
    EXPECT_EQ(fails, *degraded);
    EXPECT_EQ(static_cast<std::int64_t>(count_with(docs, "pass")), 60 - *degraded);
    for (const auto& doc : docs) {
        if (json_string(doc, "verdict") != "fail") continue;
        EXPECT_EQ(json_number(doc, "score"), 40.0);
        EXPECT_EQ(json_string(doc, "diff_summary"), "B is marked [degraded]");
    }
    // The report states the pass rate the simulator implies.
    char rate[400];
    std::snprintf(rate, sizeof rate, "%.1f%% (%lld pass, %lld fail", (60.0 - *degraded) / 0.6,
                  static_cast<long long>(60 - *degraded), static_cast<long long>(*degraded));
    EXPECT_NE(out("report.md").find(rate), std::string::npos) << rate << "\n" << out("report.md");
    EXPECT_NE(out("report.md").find("**Verdict: do not switch**"), std::string::npos);
    EXPECT_NE(result.output.find("B is marked [degraded]"), std::string::npos);  // worst pairs
}

TEST_F(EvalTest, GarbageJudgeGivesErrorsAndExit2) {
    start({}, {"--judge-garbage"});
    ASSERT_TRUE(started_);
    dir_.write_file("prompts.jsonl", prompt_lines(10));
    const RunResult result = eval();
    ASSERT_EQ(result.exit_code, 2) << result.output;
    EXPECT_NE(result.output.find("every judge call failed (10 of 10)"), std::string::npos)
        << result.output;
    const auto docs = verdicts();
    ASSERT_EQ(docs.size(), 10u);
    for (const auto& doc : docs) {
        EXPECT_EQ(json_string(doc, "verdict"), "error");
        const auto* score = json_at(doc, "score");
        ASSERT_NE(score, nullptr);
        EXPECT_TRUE(score->IsNull());
        const auto* pass = json_at(doc, "pass");
        ASSERT_TRUE(pass != nullptr && pass->IsBool());
        EXPECT_FALSE(pass->GetBool());
    }
    EXPECT_EQ(requests(*judge_), 10);
}

TEST_F(EvalTest, ResumeSendsNothingTwice) {
    start({"--degrade-rate", "0"});
    ASSERT_TRUE(started_);
    dir_.write_file("prompts.jsonl", prompt_lines(60));
    const RunResult first = eval({"--limit", "30"});
    ASSERT_EQ(first.exit_code, 1) << first.output;  // 30 samples: too few to decide
    EXPECT_TRUE(std::regex_search(first.output, std::regex("\nverdict: +inconclusive: too few")))
        << first.output;
    EXPECT_EQ(requests(*primary_), 30);
    EXPECT_EQ(verdicts().size(), 30u);

    const RunResult second = eval();
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(second.output.find("60 (30 sent by this run, 30 reused"), std::string::npos)
        << second.output;
    for (auto* sim : {primary_.get(), candidate_.get(), judge_.get()}) {
        EXPECT_EQ(requests(*sim), 60);
    }
    const auto docs = verdicts();
    ASSERT_EQ(docs.size(), 60u);
    std::set<std::int64_t> lines;
    for (const auto& doc : docs) lines.insert(line_of(doc));
    EXPECT_EQ(lines.size(), 60u);

    // A third run has nothing to send and decides the same.
    const RunResult third = eval();
    EXPECT_EQ(third.exit_code, 0) << third.output;
    EXPECT_EQ(requests(*primary_), 60);
    EXPECT_EQ(verdicts().size(), 60u);
}

TEST_F(EvalTest, BrokenPromptLinesAreReportedAndSkipped) {
    start({"--degrade-rate", "0"});
    ASSERT_TRUE(started_);
    std::string text = prompt_lines(2);                                     // lines 1-2
    text += "{\"messages\": [{\"role\": \"user\", \"content\": \"cut\"\n";  // line 3
    text += prompt_lines(1, 2);                                             // line 4
    text += "{\"model\": \"gpt\", \"prompt\": \"legacy\"}\n";               // line 5
    text += "\n";                                                           // line 6 (blank)
    text += prompt_lines(2, 3);                                             // lines 7-8
    dir_.write_file("broken.jsonl", text);
    const RunResult result = eval({}, "broken.jsonl");
    ASSERT_EQ(result.exit_code, 1) << result.output;  // 5 samples: inconclusive
    EXPECT_TRUE(std::regex_search(result.output, std::regex("broken\\.jsonl:3: not valid JSON")))
        << result.output;
    EXPECT_NE(result.output.find("broken.jsonl:5: missing `messages`"), std::string::npos)
        << result.output;
    EXPECT_NE(result.output.find("2 broken prompt lines skipped"), std::string::npos);
    std::set<std::int64_t> lines;
    for (const auto& doc : verdicts()) lines.insert(line_of(doc));
    EXPECT_EQ(lines, (std::set<std::int64_t>{1, 2, 4, 7, 8}));
    EXPECT_EQ(requests(*candidate_), 5);
}

// ---------------------------------------------------------------------------------------------
// Errors before anything is sent: exit 2

class EvalErrorsTest : public ::testing::Test {
  protected:
    RunResult eval(const std::string& yaml, const std::string& route = "chat",
                   const std::string& prompts = prompt_lines(3), bool with_key = true) {
        dir_.write_file("eval.yaml", yaml);
        dir_.write_file("prompts.jsonl", prompts);
        ProcessOptions p;
        p.argv = {TURNOUT_BIN, "eval",      "--config",      "eval.yaml", "--route",
                  route,       "--prompts", "prompts.jsonl", "--out",     "out"};
        p.cwd = dir_.path();
        if (with_key) {
            p.env[GatewayConfig::kSimKeyEnv] = GatewayConfig::kSimKey;
        } else {
            p.unset_env.push_back(GatewayConfig::kSimKeyEnv);
        }
        return run_command(p, kWait);
    }

    static std::string yaml(bool candidate = true, bool judge = true) {
        GatewayConfig config;
        config.provider(priced_provider("slow", "http://127.0.0.1:9/v1", 1, 1));
        config.provider(priced_provider("fast", "http://127.0.0.1:9/v1", 1, 1));
        RouteYaml route;
        route.name = "chat";
        route.primary = {"slow", "slow-model"};
        if (candidate) route.candidate = {"fast", "fast-model"};
        if (judge) route.judge = {"slow", "judge-model"};
        config.route(route);
        return config.yaml();
    }

    TempDir dir_;
};

TEST_F(EvalErrorsTest, ConfigErrorsAreFileLineColumn) {
    std::string bad = yaml();
    bad.insert(bad.find("providers:"), "colour: blue\n");
    const RunResult result = eval(bad);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_TRUE(std::regex_search(result.output, std::regex(R"(eval\.yaml:\d+:\d+: .*colour)")))
        << result.output;
}

TEST_F(EvalErrorsTest, MissingKeyVariableIsAnError) {
    const RunResult result = eval(yaml(), "chat", prompt_lines(3), /*with_key=*/false);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_NE(result.output.find(GatewayConfig::kSimKeyEnv), std::string::npos) << result.output;
}

TEST_F(EvalErrorsTest, RouteNeedsCandidateAndJudge) {
    RunResult result = eval(yaml(false, false));
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_NE(result.output.find("route 'chat' has no candidate"), std::string::npos)
        << result.output;
    result = eval(yaml(true, false));
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_NE(result.output.find("route 'chat' has no judge"), std::string::npos) << result.output;
    result = eval(yaml(), "nope");
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_NE(result.output.find("no route 'nope'"), std::string::npos) << result.output;
}

TEST_F(EvalErrorsTest, NoUsablePromptIsAnError) {
    const RunResult result = eval(yaml(), "chat", "not json\n{\"messages\": 3}\n");
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_NE(result.output.find("prompts.jsonl:1: not valid JSON"), std::string::npos);
    EXPECT_NE(result.output.find("prompts.jsonl:2: `messages` must be a non-empty array"),
              std::string::npos);
    EXPECT_NE(result.output.find("no usable prompt in prompts.jsonl"), std::string::npos)
        << result.output;
}

TEST_F(EvalErrorsTest, UsageErrors) {
    ProcessOptions p;
    p.argv = {TURNOUT_BIN, "eval", "--route", "chat"};
    RunResult result = run_command(p, kWait);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_NE(result.output.find("--config FILE is required"), std::string::npos);
    p.argv = {TURNOUT_BIN, "eval", "--help"};
    result = run_command(p, kWait);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("usage: turnout eval"), std::string::npos);
}

}  // namespace
}  // namespace turnout::test
