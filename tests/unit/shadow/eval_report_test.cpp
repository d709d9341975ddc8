// `turnout eval`'s report logic: the prompts file (broken lines with their numbers), the prompt
// hash, the pair records and their JSON lines, resuming, the Wilson interval, the sequential
// test, the verdict rule at its boundaries, the five worst pairs, and the renderings (the SVG
// parsed roughly: well-formed, with the pass line).

#include "shadow/eval_report.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::shadow {
namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

/// One record per letter, on lines 1, 2, ...: P pass (score 100), F fail (score 40), E judge
/// error (both sides answered, no verdict), C failed candidate (a fail without score), X
/// failed primary (an error).
std::vector<PairRecord> records_from(std::string_view pattern) {
    std::vector<PairRecord> records;
    for (const char letter : pattern) {
        PairRecord record;
        record.line_number = records.size() + 1;
        record.prompt_hash = "h" + std::to_string(record.line_number);
        record.primary.ok = letter != 'X';
        record.candidate.ok = letter != 'C';
        record.primary.latency_ms = 100;
        record.candidate.latency_ms = 20;
        ParsedVerdict verdict;
        verdict.ok = letter == 'P' || letter == 'F';
        verdict.score = letter == 'P' ? 100 : 40;
        verdict.error = verdict.ok ? "" : "no JSON object with a score";
        verdict.reason = letter == 'P' ? "same" : "worse";
        if (!record.primary.ok) record.primary.error = "status 500";
        if (!record.candidate.ok) record.candidate.error = "timeout";
        settle_pair(record, verdict, 95);
        records.push_back(record);
    }
    return records;
}

std::string repeat(std::string_view block, int times) {
    std::string out;
    for (int i = 0; i < times; ++i) out += block;
    return out;
}

EvalParams defaults() { return EvalParams{}; }

/// Rough XML check: every tag is closed in order, no stray '<' in text, one root `svg`.
::testing::AssertionResult well_formed_svg(const std::string& svg) {
    if (!svg.starts_with("<svg")) return ::testing::AssertionFailure() << "does not start <svg";
    std::vector<std::string> open;
    std::size_t at = 0;
    std::size_t roots = 0;
    while ((at = svg.find('<', at)) != std::string::npos) {
        const std::size_t end = svg.find('>', at);
        if (end == std::string::npos) return ::testing::AssertionFailure() << "unclosed tag";
        const std::string tag = svg.substr(at + 1, end - at - 1);
        if (tag.find('<') != std::string::npos) {
            return ::testing::AssertionFailure() << "'<' inside a tag: " << tag;
        }
        const std::string name = tag.substr(tag[0] == '/' ? 1 : 0,
                                            tag.find_first_of(" />", 1) - (tag[0] == '/' ? 1 : 0));
        if (tag[0] == '/') {
            if (open.empty() || open.back() != name) {
                return ::testing::AssertionFailure() << "unbalanced </" << name << ">";
            }
            open.pop_back();
        } else if (!tag.ends_with("/")) {
            if (open.empty()) ++roots;
            open.push_back(name);
        }
        at = end + 1;
    }
    if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> not closed";
    if (roots != 1) return ::testing::AssertionFailure() << roots << " root elements";
    return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// The prompts file

TEST(EvalPrompts, BrokenLinesAreReportedWithTheirNumbersAndSkipped) {
    const std::string text =
        "{\"messages\": [{\"role\": \"user\", \"content\": \"one\"}]}\n"  // 1
        "{\"messages\": [{\"role\": \"user\", \"content\": \"two\"}\n"    // 2 broken
        "\n"                                                              // 3 blank
        "[1, 2]\n"                                                        // 4
        "{\"model\": \"gpt-x\"}\n"                                        // 5
        "{\"messages\": []}\n"                                            // 6
        "{\"messages\": [{\"content\": \"no role\"}]}\n"                  // 7
        "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"8\"}]}\r\n"  // 8
        "   \t\n"                                                         // 9 blank
        "{\"messages\": [{\"role\": \"user\", \"content\": \"last\"}]}";  // 10, no \n
    const PromptFile file = parse_prompts(text);
    ASSERT_EQ(file.prompts.size(), 3u);
    EXPECT_EQ(file.prompts[0].line_number, 1u);
    EXPECT_EQ(file.prompts[1].line_number, 8u);
    EXPECT_EQ(file.prompts[2].line_number, 10u);
    ASSERT_EQ(file.problems.size(), 5u);
    const std::vector<std::size_t> lines = {2, 4, 5, 6, 7};
    for (std::size_t i = 0; i < lines.size(); ++i) {
        EXPECT_EQ(file.problems[i].line_number, lines[i]) << file.problems[i].reason;
    }
    EXPECT_NE(file.problems[0].reason.find("not valid JSON"), std::string::npos);
    EXPECT_NE(file.problems[2].reason.find("missing `messages`"), std::string::npos);
    EXPECT_NE(file.problems[4].reason.find("messages[0]"), std::string::npos);
    EXPECT_EQ(format_problem("p.jsonl", file.problems[1]),
              "p.jsonl:4: expected a JSON object with `messages`");
}

TEST(EvalPrompts, ByteOrderMarkIsTolerated) {
    const PromptFile file =
        parse_prompts("\xEF\xBB\xBF{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n");
    ASSERT_EQ(file.prompts.size(), 1u);
    EXPECT_TRUE(file.problems.empty());
}

TEST(EvalPrompts, HashIgnoresSpellingButNotContent) {
    const PromptFile a = parse_prompts(R"({"messages":[{"role":"user","content":"hi"}],"n":1})");
    const PromptFile b = parse_prompts(
        R"({ "n" : 1 ,  "messages" : [ { "content" : "h\u0069", "role" : "user" } ] })");
    const PromptFile c = parse_prompts(R"({"messages":[{"role":"user","content":"ho"}],"n":1})");
    ASSERT_EQ(a.prompts.size(), 1u);
    ASSERT_EQ(b.prompts.size(), 1u);
    ASSERT_EQ(c.prompts.size(), 1u);
    EXPECT_EQ(a.prompts[0].hash.size(), 64u);
    EXPECT_EQ(a.prompts[0].hash,
              sha256_hex(R"({"messages":[{"content":"hi","role":"user"}],"n":1})"));
    EXPECT_EQ(a.prompts[0].hash, b.prompts[0].hash);  // member order, spaces, escapes
    EXPECT_NE(a.prompts[0].hash, c.prompts[0].hash);
}

TEST(EvalPrompts, CanonicalJsonSortsMembersAtEveryLevel) {
    EXPECT_EQ(canonical_json(R"({"b": {"z": 1, "a": [ {"y": 2, "x": 3} ]}, "a": null})"),
              R"({"a":null,"b":{"a":[{"x":3,"y":2}],"z":1}})");
    EXPECT_EQ(canonical_json("{not json"), "");
}

TEST(EvalPrompts, DeepNestingIsABrokenLine) {
    const std::string deep = R"({"messages":[{"role":"user","x":)" + std::string(100, '[') +
                             std::string(100, ']') + "}]}";
    const PromptFile file = parse_prompts(deep);
    EXPECT_TRUE(file.prompts.empty());
    ASSERT_EQ(file.problems.size(), 1u);
    EXPECT_EQ(file.problems[0].reason, "JSON nested too deeply");
}

TEST(EvalPrompts, RequestGetsTheTargetModel) {
    rapidjson::Document added;
    added.Parse(request_with_model(R"({"messages":[]})", "fast-model").c_str());
    ASSERT_TRUE(added.IsObject());
    EXPECT_STREQ(added["model"].GetString(), "fast-model");
    rapidjson::Document replaced;
    replaced.Parse(request_with_model(R"({"model":"other","messages":[]})", "m2").c_str());
    EXPECT_STREQ(replaced["model"].GetString(), "m2");
    EXPECT_EQ(replaced.MemberCount(), 2u);
    EXPECT_EQ(request_with_model("[1]", "m"), "[1]");
}

// ---------------------------------------------------------------------------------------------
// One pair

TEST(EvalPair, SettledLikeTheShadowLoop) {
    const auto records = records_from("PFECX");
    EXPECT_EQ(records[0].verdict, VerdictKind::pass);
    EXPECT_EQ(records[0].score, 100);
    EXPECT_EQ(records[1].verdict, VerdictKind::fail);
    EXPECT_EQ(records[1].score, 40);
    EXPECT_EQ(records[2].verdict, VerdictKind::error);
    EXPECT_FALSE(records[2].score);
    EXPECT_EQ(records[2].reason, "no JSON object with a score");
    EXPECT_EQ(records[3].verdict, VerdictKind::fail);  // a failed candidate is a fail
    EXPECT_FALSE(records[3].score);
    EXPECT_EQ(records[3].reason, "candidate failed: timeout");
    EXPECT_EQ(records[4].verdict, VerdictKind::error);  // no reference: no evidence
    EXPECT_EQ(records[4].reason, "primary failed: status 500");
}

TEST(EvalPair, PassIsScoreAtOrAbovePassScore) {
    PairRecord record;
    record.primary.ok = record.candidate.ok = true;
    ParsedVerdict verdict;
    verdict.ok = true;
    verdict.judge_pass = false;  // recorded by the judge, never trusted
    verdict.score = 95;
    settle_pair(record, verdict, 95);
    EXPECT_EQ(record.verdict, VerdictKind::pass);
    verdict.score = 94.9;
    settle_pair(record, verdict, 95);
    EXPECT_EQ(record.verdict, VerdictKind::fail);
}

TEST(EvalPair, CostFromThePrice) {
    config::PriceConfig price;
    price.input_per_mtok = 15;
    price.output_per_mtok = 75;
    EXPECT_DOUBLE_EQ(config::cost_usd(price, 1000, 200), (1000 * 15.0 + 200 * 75.0) / 1e6);
}

TEST(EvalPair, JsonLineRoundTrips) {
    PairRecord record = records_from("P")[0];
    record.prompt_hash = std::string(64, 'a');
    record.diff_summary = "wording \"only\"\n";
    record.primary = {true, "", 812.5, 812.5, 120, 300, 0.0243};
    record.candidate = {false, "timeout", 60000, 60000, 0, 0, 0};
    const std::string line = to_json_line(record);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    ASSERT_TRUE(doc.IsObject());
    for (const char* key : {"line_number", "prompt_hash", "score", "pass", "verdict", "reason",
                            "diff_summary", "primary_latency_ms", "candidate_latency_ms",
                            "primary_output_tokens", "candidate_cost_usd", "primary_ttft_ms"}) {
        EXPECT_TRUE(doc.HasMember(key)) << key;
    }
    EXPECT_TRUE(doc["score"].IsNumber());
    const auto parsed = parse_record(line);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, record);

    record.score.reset();
    record.verdict = VerdictKind::error;
    const auto null_score = parse_record(to_json_line(record));
    ASSERT_TRUE(null_score);
    EXPECT_FALSE(null_score->score);
    EXPECT_EQ(null_score->verdict, VerdictKind::error);
}

TEST(EvalPair, ForeignLinesAreNoRecords) {
    EXPECT_FALSE(parse_record(""));
    EXPECT_FALSE(parse_record("{\"line_number\": 3"));
    EXPECT_FALSE(parse_record(R"({"line_number":0,"prompt_hash":"h","score":1,"verdict":"pass"})"));
    EXPECT_FALSE(parse_record(R"({"line_number":2,"prompt_hash":"h","score":1,"verdict":"ok"})"));
    EXPECT_FALSE(parse_record(R"({"line_number":2,"score":1,"verdict":"pass"})"));
    EXPECT_FALSE(
        parse_record(R"({"line_number":2,"prompt_hash":"h","score":"1","verdict":"pass"})"));
    EXPECT_TRUE(parse_record(R"({"line_number":2,"prompt_hash":"h","score":1,"verdict":"pass"})"));
}

// ---------------------------------------------------------------------------------------------
// Resuming

TEST(EvalResume, ParsesWhatARunLeftIncludingATruncatedLine) {
    const auto records = records_from("PFE");
    const std::string text = to_json_line(records[0]) + "\n\n" + to_json_line(records[1]) + "\n" +
                             to_json_line(records[2]).substr(0, 40);
    const SavedVerdicts saved = parse_verdicts_file(text);
    ASSERT_EQ(saved.records.size(), 2u);
    EXPECT_EQ(saved.records[0], records[0]);
    EXPECT_EQ(saved.records[1], records[1]);
    EXPECT_EQ(saved.bad_lines, std::vector<std::size_t>{4});
}

TEST(EvalResume, MatchesByLineNumberAndHash) {
    const PromptFile file =
        parse_prompts(repeat("{\"messages\": [{\"role\": \"user\", \"content\": \"same\"}]}\n", 5));
    ASSERT_EQ(file.prompts.size(), 5u);
    std::vector<PairRecord> saved = records_from("PFPF");
    saved[0].line_number = 2;  // line 2, right hash: reused
    saved[0].prompt_hash = file.prompts[1].hash;
    saved[1].line_number = 4;  // line 4, right hash: reused
    saved[1].prompt_hash = file.prompts[3].hash;
    saved[2].line_number = 3;  // line 3, another prompt's hash (the file changed): sent again
    saved[2].prompt_hash = std::string(64, '0');
    saved[3].line_number = 2;  // a second record for line 2: the first one wins
    saved[3].prompt_hash = file.prompts[1].hash;
    const ResumePlan plan = plan_resume(file.prompts, saved);
    ASSERT_EQ(plan.reused.size(), 2u);
    EXPECT_EQ(plan.reused[0].line_number, 2u);
    EXPECT_EQ(plan.reused[0].verdict, VerdictKind::pass);
    EXPECT_EQ(plan.reused[1].line_number, 4u);
    ASSERT_EQ(plan.to_send.size(), 3u);
    EXPECT_EQ(plan.to_send[0].line_number, 1u);
    EXPECT_EQ(plan.to_send[1].line_number, 3u);
    EXPECT_EQ(plan.to_send[2].line_number, 5u);
}

// ---------------------------------------------------------------------------------------------
// Statistics

TEST(EvalStatistics, WilsonIntervalHasBothBounds) {
    const EvalSummary nine_in_ten = summarise(records_from(repeat("PPPPPPPPPF", 5)), defaults());
    EXPECT_DOUBLE_EQ(nine_in_ten.pass_rate, 0.9);
    EXPECT_NEAR(nine_in_ten.wilson_lower, 0.786398, 1e-6);
    EXPECT_NEAR(nine_in_ten.wilson_upper, 0.956524, 1e-6);
    EXPECT_DOUBLE_EQ(nine_in_ten.wilson_lower, wilson_lower_bound(45, 50));

    const EvalSummary all = summarise(records_from(repeat("P", 50)), defaults());
    EXPECT_NEAR(all.wilson_lower, 0.928652, 1e-6);
    EXPECT_NEAR(all.wilson_upper, 1.0, 1e-9);
    const EvalSummary none = summarise(records_from("EE"), defaults());
    EXPECT_EQ(none.samples, 0u);
    EXPECT_EQ(none.wilson_lower, 0.0);
}

TEST(EvalStatistics, SprtBoundsAreTheControllersFirstTest) {
    config::RouteConfig route;
    route.name = "r";
    config::TargetConfig target;
    target.provider = "p";
    target.model = "m";
    route.primary = target;
    route.candidate = target;
    route.promotion.confidence = 0.99;
    route.promotion.threshold = 0.95;
    route.promotion.rollback_threshold = 0.8;
    const Controller controller(route, "f", Clock::now());
    const SprtResult sprt = run_sprt({}, eval_params(route));
    EXPECT_DOUBLE_EQ(sprt.accept, controller.status().sprt_accept);
    EXPECT_DOUBLE_EQ(sprt.reject, controller.status().sprt_reject);
    EXPECT_NEAR(sprt.accept, accept_bound(0.01, 1), 1e-12);
}

TEST(EvalStatistics, SprtAcceptsAfter62StraightPassesAndStops) {
    // ln(pi^2 / (6 x 0.05)) / ln(0.9 / 0.85) = 61.1: the controller's first flip test.
    const SprtResult undecided = run_sprt(records_from(repeat("P", 61)), defaults());
    EXPECT_EQ(undecided.decision, SprtDecision::undecided);
    EXPECT_NEAR(undecided.llr, 61 * std::log(0.9 / 0.85), 1e-9);
    const SprtResult accepted = run_sprt(records_from(repeat("P", 62) + "FFFFFFFFFF"), defaults());
    EXPECT_EQ(accepted.decision, SprtDecision::accepted);
    EXPECT_EQ(accepted.samples_used, 62u);  // the fails after the decision are not read
    EXPECT_NEAR(accepted.llr, 62 * std::log(0.9 / 0.85), 1e-9);
    EXPECT_NEAR(accepted.accept, std::log(M_PI * M_PI / (6 * 0.05)), 1e-12);
    EXPECT_NEAR(accepted.reject, -std::log(20.0), 1e-12);
}

TEST(EvalStatistics, SprtRejectsAfter8StraightFailsAndSkipsErrors) {
    EXPECT_EQ(run_sprt(records_from("FFFFFFF"), defaults()).decision, SprtDecision::undecided);
    const SprtResult rejected = run_sprt(records_from("EFEFXFFFFFF"), defaults());
    EXPECT_EQ(rejected.decision, SprtDecision::rejected);
    EXPECT_EQ(rejected.samples_used, 8u);
    EXPECT_NEAR(rejected.llr, 8 * std::log(0.1 / 0.15), 1e-9);
    // A failed candidate counts as a fail.
    EXPECT_EQ(run_sprt(records_from("CCCCCCCC"), defaults()).decision, SprtDecision::rejected);
}

TEST(EvalStatistics, MediansCostsAndSpeedup) {
    auto records = records_from("PPPF");
    const double latencies[] = {300, 100, 200, 9999};
    for (std::size_t i = 0; i < records.size(); ++i) {
        records[i].primary.latency_ms = records[i].primary.ttft_ms = latencies[i];
        records[i].candidate.latency_ms = records[i].candidate.ttft_ms = 10.0 * (i + 1);
        records[i].primary.cost_usd = 0.002;
        records[i].candidate.cost_usd = 0.0005;
        records[i].primary.output_tokens = 10;
    }
    records[3].primary.ok = false;  // a failed call has no latency worth a median
    records[3].primary.error = "timeout";
    settle_pair(records[3], ParsedVerdict{}, 95);
    const EvalSummary s = summarise(records, defaults());
    EXPECT_EQ(s.primary.ok_calls, 3u);
    EXPECT_DOUBLE_EQ(s.primary.latency_p50_ms, 200);
    EXPECT_DOUBLE_EQ(s.candidate.latency_p50_ms, 25);  // even count: mean of the middle two
    EXPECT_DOUBLE_EQ(s.candidate.ttft_p50_ms, 25);
    EXPECT_DOUBLE_EQ(s.speedup, 8);
    EXPECT_NEAR(s.primary.cost_per_1k_usd, 2.0, 1e-12);
    EXPECT_NEAR(s.candidate.cost_per_1k_usd, 0.5, 1e-12);
    EXPECT_NEAR(s.saving_per_1k_usd, 1.5, 1e-12);
    EXPECT_EQ(s.primary.output_tokens, 30u);
}

// ---------------------------------------------------------------------------------------------
// The verdict rule

TEST(EvalVerdictRule, RequiredSamples) {
    EvalParams params;
    params.min_samples = 100;
    EXPECT_EQ(required_samples(params), 50u);
    params.min_samples = 20;
    EXPECT_EQ(required_samples(params), 20u);
    params.min_samples = 0;
    EXPECT_EQ(required_samples(params), 1u);
}

TEST(EvalVerdictRule, AllPassesSwitch) {
    const EvalSummary s = summarise(records_from(repeat("P", 62)), defaults());
    EXPECT_EQ(s.verdict, EvalVerdict::switch_to_candidate) << s.why;
    EXPECT_EQ(s.sprt.decision, SprtDecision::accepted);
    EXPECT_EQ(exit_code(s), 0);
    EXPECT_EQ(to_string(s.verdict), "switch");
}

TEST(EvalVerdictRule, SampleFloorBoundary) {
    // 49 passes: too few (and the test is undecided); 50: the Wilson bound 0.929 >= 0.85.
    const EvalSummary few = summarise(records_from(repeat("P", 49)), defaults());
    EXPECT_EQ(few.verdict, EvalVerdict::inconclusive) << few.why;
    EXPECT_NE(few.why.find("too few samples"), std::string::npos);
    EXPECT_EQ(exit_code(few), 1);
    const EvalSummary enough = summarise(records_from(repeat("P", 50)), defaults());
    EXPECT_EQ(enough.sprt.decision, SprtDecision::undecided);
    EXPECT_EQ(enough.verdict, EvalVerdict::switch_to_candidate) << enough.why;
}

TEST(EvalVerdictRule, SmallerMinSamplesLowersTheFloor) {
    EvalParams params;
    params.min_samples = 20;
    // 20 of 20: enough samples, but the Wilson bound 0.839 < 0.85 and the test undecided.
    const EvalSummary weak = summarise(records_from(repeat("P", 20)), params);
    EXPECT_EQ(weak.verdict, EvalVerdict::inconclusive) << weak.why;
    EXPECT_NE(weak.why.find("evidence is weak"), std::string::npos);
    const EvalSummary strong = summarise(records_from(repeat("P", 30)), params);
    EXPECT_EQ(strong.verdict, EvalVerdict::switch_to_candidate) << strong.why;
}

TEST(EvalVerdictRule, ThresholdBoundary) {
    // 45 of 50 = exactly the threshold: at it counts as above; the evidence is still weak.
    const EvalSummary at = summarise(records_from(repeat("PPPPPPPPPF", 5)), defaults());
    EXPECT_EQ(at.sprt.decision, SprtDecision::undecided);
    EXPECT_EQ(at.verdict, EvalVerdict::inconclusive) << at.why;
    // 44 of 50 = 88%, spread so that the test never rejects: below the threshold.
    const EvalSummary below = summarise(records_from(repeat("PPPPPPPF", 6) + "PP"), defaults());
    EXPECT_EQ(below.sprt.decision, SprtDecision::undecided);
    EXPECT_EQ(below.verdict, EvalVerdict::do_not_switch) << below.why;
    EXPECT_NE(below.why.find("< threshold"), std::string::npos);
    EXPECT_EQ(exit_code(below), 1);
}

TEST(EvalVerdictRule, WilsonBoundAloneCanSwitch) {
    // At 99.9% confidence the test needs ln(999) = 6.9: 360 of 400 never get there, but the
    // Wilson lower bound 0.867 >= 0.85.
    EvalParams params;
    params.confidence = 0.999;
    const EvalSummary s = summarise(records_from(repeat("PPPPPPPPPF", 40)), params);
    EXPECT_EQ(s.sprt.decision, SprtDecision::undecided);
    EXPECT_NEAR(s.wilson_lower, 0.866689, 1e-6);
    EXPECT_EQ(s.verdict, EvalVerdict::switch_to_candidate) << s.why;
    EXPECT_NE(s.why.find("Wilson"), std::string::npos);
}

TEST(EvalVerdictRule, SprtRejectionIsDoNotSwitchAtAnyCount) {
    const EvalSummary s = summarise(records_from("FFFFFFFF"), defaults());
    EXPECT_EQ(s.verdict, EvalVerdict::do_not_switch) << s.why;
    EXPECT_EQ(exit_code(s), 1);
    // Even when the later pairs bring the rate above the threshold: the test had decided.
    const EvalSummary late = summarise(records_from("FFFFFFFF" + repeat("P", 92)), defaults());
    EXPECT_GE(late.pass_rate, 0.9);
    EXPECT_EQ(late.verdict, EvalVerdict::do_not_switch) << late.why;
}

TEST(EvalVerdictRule, ErrorShareBoundary) {
    // 12 errors of 60 pairs = 20%: allowed (too few samples, though); 13 of 65 too; 14 of 66:
    // too many.
    const EvalSummary allowed =
        summarise(records_from(repeat("P", 48) + repeat("E", 12)), defaults());
    EXPECT_NE(allowed.why.find("too few"), std::string::npos) << allowed.why;  // 48 < 50
    const EvalSummary allowed_enough =
        summarise(records_from(repeat("P", 52) + repeat("E", 13)), defaults());
    EXPECT_EQ(allowed_enough.verdict, EvalVerdict::switch_to_candidate) << allowed_enough.why;
    const EvalSummary too_many =
        summarise(records_from(repeat("P", 52) + repeat("E", 13) + "X"), defaults());
    EXPECT_EQ(too_many.errors, 14u);
    EXPECT_EQ(too_many.verdict, EvalVerdict::inconclusive) << too_many.why;
    EXPECT_NE(too_many.why.find("too many errors"), std::string::npos);
}

TEST(EvalVerdictRule, EveryJudgeCallFailedIsExit2) {
    const EvalSummary all_errors = summarise(records_from("EEEE"), defaults());
    EXPECT_TRUE(all_errors.all_judging_failed());
    EXPECT_EQ(exit_code(all_errors), 2);
    // Failed candidates are fails, but the judge answered no call it got.
    const EvalSummary with_fails = summarise(records_from("EECE"), defaults());
    EXPECT_EQ(with_fails.samples, 1u);
    EXPECT_TRUE(with_fails.all_judging_failed());
    EXPECT_EQ(exit_code(with_fails), 2);
    // Only candidate failures: no judge call was made; a plain "do not switch".
    const EvalSummary no_calls = summarise(records_from("CCCCCCCC"), defaults());
    EXPECT_FALSE(no_calls.all_judging_failed());
    EXPECT_EQ(exit_code(no_calls), 1);
    const EvalSummary one_ok = summarise(records_from("EEEP"), defaults());
    EXPECT_FALSE(one_ok.all_judging_failed());
    EXPECT_EQ(exit_code(one_ok), 1);
}

// ---------------------------------------------------------------------------------------------
// The five worst

TEST(EvalWorst, FailedCandidateFirstThenLowestScoreErrorsLeftOut) {
    auto records = records_from("PPEPCPPPX");
    const double scores[] = {99, 70, 0, 97, 0, 70, 100, 96, 0};
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (records[i].score) records[i].score = scores[i];
    }
    const auto worst = worst_pairs(records);
    ASSERT_EQ(worst.size(), 5u);
    const std::vector<std::size_t> expected = {5, 2, 6, 8, 4};
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(worst[i].line_number, expected[i]) << i;
    }
    EXPECT_EQ(summarise(records, defaults()).worst.size(), 5u);
    EXPECT_EQ(worst_pairs(records_from("PE")).size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Renderings

ReportContext context_for(double pass_score = 95) {
    ReportContext context;
    context.route = "chat";
    context.primary = "slow/big<model>&co";
    context.candidate = "fast/small";
    context.judge = "judge/j";
    context.prompts_file = "p.jsonl";
    context.out_dir = "out";
    context.sent = 3;
    context.params.pass_score = pass_score;
    return context;
}

TEST(EvalRender, SvgIsWellFormedWithThePassLineAndBothLatencies) {
    auto records = records_from("PPFPE");
    records[1].score = 97;
    records[2].score = 12.5;
    const EvalSummary s = summarise(records, defaults());
    const std::string svg = render_svg(s, context_for(90));
    EXPECT_TRUE(well_formed_svg(svg)) << svg;
    EXPECT_TRUE(svg.ends_with("</svg>\n"));
    // The pass line at score 90: x = 50 + 90 * 420 / 100.
    const std::regex pass_line(
        R"re(<line x1="428\.0" y1="[0-9.]+" x2="428\.0" [^>]*id="pass-line")re");
    EXPECT_TRUE(std::regex_search(svg, pass_line)) << svg;
    EXPECT_NE(svg.find("pass &gt;= 90"), std::string::npos);
    // Scores 100, 97, 12.5, 100 (and an error without one): bins 95-100 and 10-15 have bars.
    std::size_t rects = 0;
    for (std::size_t at = svg.find("<rect"); at != std::string::npos;
         at = svg.find("<rect", at + 1)) {
        ++rects;
    }
    EXPECT_EQ(rects, 1u + 2u + 2u);  // the background, two bins, two latency bars
    EXPECT_NE(svg.find(">3</text>"), std::string::npos);  // three scores in 95-100
    EXPECT_NE(svg.find("100.0 ms"), std::string::npos);
    EXPECT_NE(svg.find("20.0 ms"), std::string::npos);
    EXPECT_NE(svg.find("slow/big&lt;model&gt;&amp;co"), std::string::npos);
    EXPECT_EQ(svg.find("<model>"), std::string::npos);
}

TEST(EvalRender, SvgOfNothingIsStillWellFormed) {
    const EvalSummary s = summarise({}, defaults());
    EXPECT_TRUE(well_formed_svg(render_svg(s, context_for())));
}

TEST(EvalRender, SummaryAndReportCarryTheNumbers) {
    auto records = records_from(repeat("P", 57) + "FFF");
    records[58].reason = "a | pipe\nand a line break";
    const EvalSummary s = summarise(records, defaults());
    const std::string summary = render_summary(s, context_for());
    EXPECT_NE(summary.find("pass rate:        95.0% (57 pass, 3 fail, 0 errors"), std::string::npos)
        << summary;
    EXPECT_TRUE(std::regex_search(summary, std::regex("\nverdict: +switch: ")));
    EXPECT_NE(summary.find("Wilson interval 86.3% to 98.3%"), std::string::npos) << summary;
    // 57 passes and 3 fails leave the first flip test undecided; the Wilson bound decides.
    EXPECT_NE(summary.find("sequential test:  undecided (statistic 2.042, reject at -2.996, "
                           "accept at 3.493"),
              std::string::npos)
        << summary;
    EXPECT_NE(summary.find("speed-up 5.00x"), std::string::npos);
    EXPECT_NE(summary.find("  line 58: score 40 (fail)"), std::string::npos);

    const std::string report = render_report(s, context_for());
    EXPECT_NE(report.find("**Verdict: switch**"), std::string::npos);
    EXPECT_NE(report.find("95.0%"), std::string::npos);
    EXPECT_NE(report.find("a \\| pipe and a line break"), std::string::npos);
    // One table row per pair in "Every pair".
    const std::string table = report.substr(report.find("## Every pair"));
    EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 2 + 2 + 60);
}

TEST(EvalRender, Progress) {
    EXPECT_EQ(progress_text({0, 60, 0, 0, 0, 0}), "0/60 pairs, pass 0/0, 0 errors, ETA ?");
    EXPECT_EQ(progress_text({12, 60, 11, 1, 1, 3.0}),
              "12/60 pairs, pass 11/12 (91.7%), 1 error, ETA 12s");
    EXPECT_EQ(progress_text({1, 60, 1, 0, 0, 5.0}),
              "1/60 pairs, pass 1/1 (100.0%), 0 errors, ETA 4m55s");
    std::size_t printed = 0;
    for (std::size_t done = 1; done <= 60; ++done) printed += progress_milestone(done, 60) ? 1 : 0;
    EXPECT_EQ(printed, 10u);
    EXPECT_TRUE(progress_milestone(7, 7));
    EXPECT_TRUE(progress_milestone(1, 7));
    EXPECT_FALSE(progress_milestone(0, 7));
}

}  // namespace
}  // namespace turnout::shadow
