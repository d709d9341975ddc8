// `turnout eval`: prompts from a file through a route's primary and candidate, each pair judged,
// the verdicts appended to --out/verdicts.jsonl as they come (so a rerun resumes), then the
// summary, report.md and scores.svg.
//
// Threading: one io_context run by the calling thread. Every coroutine, the run state and the
// output files are touched from that thread only, so nothing here locks.

#include "cli/eval.hpp"

#include <unistd.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "base/logging.hpp"
#include "config/loader.hpp"
#include "routing/route_table.hpp"
#include "shadow/eval_report.hpp"
#include "shadow/judge.hpp"
#include "shadow/judge_call.hpp"
#include "upstream/client.hpp"

namespace turnout::cli {
using upstream::Clock;

using base::flush_logs;
using base::gateway_log;
using base::init_logging;
using base::log_event;
using shadow::judge_pair;
using shadow::JudgeReading;
using upstream::background_call;
using upstream::CallPlan;
using upstream::Measured;
namespace {

constexpr std::string_view kUsage =
    "usage: turnout eval --config FILE --route NAME --prompts FILE.jsonl [--out DIR]\n"
    "                    [--concurrency N] [--limit N]\n"
    "  Sends each prompt (JSON lines, each an object with `messages`: an OpenAI chat request\n"
    "  body, `model` optional) to the route's primary and candidate, has the route's judge\n"
    "  score each pair, and prints the pass rate with its 95% Wilson interval, the sequential\n"
    "  test and the verdict: switch / do not switch / inconclusive.\n"
    "  --out DIR          report.md, verdicts.jsonl and scores.svg (default "
    "./turnout-eval-ROUTE);\n"
    "                     running again with the same DIR resumes: judged prompts are not resent\n"
    "  --concurrency N    prompts in flight (default 4)\n"
    "  --limit N          only the first N usable prompts\n"
    "  exit status: 0 switch, 1 do not switch or inconclusive, 2 errors\n";

constexpr unsigned kMaxConcurrency = 1024;
/// A terminal's progress line is redrawn at most this often.
constexpr auto kRedrawInterval = std::chrono::milliseconds(200);

/// A start-up failure: printed as `turnout eval: MESSAGE`, exit 2.
struct EvalError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// A bad command line: the message, then the usage.
struct UsageError : EvalError {
    using EvalError::EvalError;
};

struct EvalArgs {
    std::string config_path;
    std::string route;
    std::string prompts_path;
    std::string out_dir;
    unsigned concurrency = 4;
    std::optional<std::size_t> limit;
    bool help = false;
};

std::size_t parse_count(std::string_view option, std::string_view text, std::size_t max) {
    std::size_t value = 0;
    try {
        std::size_t used = 0;
        value = std::stoul(std::string(text), &used);
        if (used != text.size() || text.starts_with('-')) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
        throw UsageError(std::string(option) + " needs a number, got '" + std::string(text) + "'");
    }
    if (value < 1 || value > max) {
        throw UsageError(std::string(option) + " must be from 1 to " + std::to_string(max));
    }
    return value;
}

EvalArgs parse_args(int argc, char** argv) {
    EvalArgs args;
    const std::vector<std::string_view> words(argv + 1, argv + argc);
    for (std::size_t i = 0; i < words.size(); ++i) {
        const std::string_view word = words[i];
        if (word == "--help" || word == "-h") {
            args.help = true;
            return args;
        }
        const bool known = word == "--config" || word == "--route" || word == "--prompts" ||
                           word == "--out" || word == "--concurrency" || word == "--limit";
        if (!known) throw UsageError("unexpected argument '" + std::string(word) + "'");
        if (i + 1 >= words.size()) throw UsageError(std::string(word) + " needs a value");
        const std::string_view value = words[++i];
        if (word == "--config") {
            args.config_path = value;
        } else if (word == "--route") {
            args.route = value;
        } else if (word == "--prompts") {
            args.prompts_path = value;
        } else if (word == "--out") {
            args.out_dir = value;
        } else if (word == "--concurrency") {
            args.concurrency = static_cast<unsigned>(parse_count(word, value, kMaxConcurrency));
        } else {
            args.limit = parse_count(word, value, std::numeric_limits<std::size_t>::max());
        }
    }
    if (args.config_path.empty()) throw UsageError("--config FILE is required");
    if (args.route.empty()) throw UsageError("--route NAME is required");
    if (args.prompts_path.empty()) throw UsageError("--prompts FILE.jsonl is required");
    if (args.out_dir.empty()) args.out_dir = "turnout-eval-" + args.route;
    return args;
}

std::optional<std::string> read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Writes a whole file through a temporary and a rename, so a reader never sees half of it.
void write_text(const std::filesystem::path& path, const std::string& text) {
    const std::filesystem::path temporary = path.string() + ".tmp";
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out.flush()) throw EvalError("cannot write " + temporary.string());
    }
    std::error_code ec;
    std::filesystem::rename(temporary, path, ec);
    if (ec) throw EvalError("cannot write " + path.string() + ": " + ec.message());
}

// ---------------------------------------------------------------------------------------------
// Setup: the config, the route, the judge template, the prompts

std::shared_ptr<const config::Config> load_config(const std::string& path) {
    const auto result = config::load_config_file(path, config::EnvPolicy::require);
    for (const auto& warning : result.warnings) std::cerr << "warning: " << warning << '\n';
    for (const auto& error : result.errors) std::cerr << error.text << '\n';
    if (!result.errors.empty()) throw EvalError("the config has errors (see above)");
    return result.config;
}

const config::RouteConfig& find_route(const config::Config& config, const EvalArgs& args) {
    std::string names;
    for (const auto& route : config.routes) {
        if (route.name != args.route) {
            names += (names.empty() ? "" : ", ") + route.name;
            continue;
        }
        if (!route.candidate) {
            throw EvalError("route '" + route.name + "' has no candidate: eval compares the " +
                            "route's primary with its candidate");
        }
        if (route.judge.provider.empty()) {
            throw EvalError("route '" + route.name + "' has no judge: eval needs one to score " +
                            "each pair");
        }
        return route;
    }
    throw EvalError("no route '" + args.route + "' in " + args.config_path + " (routes: " + names +
                    ")");
}

std::string judge_template(const config::RouteConfig& route) {
    std::string text;
    try {
        text = shadow::load_judge_template(route.judge);
    } catch (const std::runtime_error& e) {
        throw EvalError(e.what());
    }
    const auto problems = shadow::check_judge_template(text);
    if (!problems.empty()) {
        throw EvalError("judge.prompt_file " + route.judge.prompt_file + ": " + problems.front());
    }
    return text;
}

struct Prompts {
    std::vector<shadow::EvalPrompt> usable;
    std::size_t broken_lines = 0;
};

Prompts load_prompts(const EvalArgs& args) {
    const auto text = read_text(args.prompts_path);
    if (!text) throw EvalError("cannot read " + args.prompts_path);
    shadow::PromptFile file = shadow::parse_prompts(*text);
    for (const auto& problem : file.problems) {
        std::cerr << shadow::format_problem(args.prompts_path, problem) << '\n';
    }
    if (args.limit && file.prompts.size() > *args.limit) file.prompts.resize(*args.limit);
    if (file.prompts.empty()) throw EvalError("no usable prompt in " + args.prompts_path);
    return {std::move(file.prompts), file.problems.size()};
}

// ---------------------------------------------------------------------------------------------
// The verdicts file: what an earlier run left, and the appending of new records

class VerdictLog {
  public:
    /// Reads OUT/verdicts.jsonl (if any) and opens it for appending.
    explicit VerdictLog(const std::filesystem::path& path) : path_(path) {
        const auto text = read_text(path.string());
        if (text) {
            shadow::SavedVerdicts saved = shadow::parse_verdicts_file(*text);
            for (const std::size_t line : saved.bad_lines) {
                std::cerr << path.string() << ":" << line << ": not a verdict record, ignored\n";
            }
            saved_ = std::move(saved.records);
        }
        out_.open(path, std::ios::binary | std::ios::app);
        if (!out_) throw EvalError("cannot write " + path.string());
        // A run killed mid-write leaves half a line: start ours on a line of its own.
        if (text && !text->empty() && text->back() != '\n') out_ << '\n';
    }

    const std::vector<shadow::PairRecord>& saved() const { return saved_; }

    void append(const shadow::PairRecord& record) {
        out_ << shadow::to_json_line(record) << '\n' << std::flush;
        if (!out_) failed_ = true;
    }

    void check() const {
        if (failed_) throw EvalError("writing " + path_.string() + " failed");
    }

  private:
    std::filesystem::path path_;
    std::vector<shadow::PairRecord> saved_;
    std::ofstream out_;
    bool failed_ = false;
};

// ---------------------------------------------------------------------------------------------
// Progress on stderr: a redrawn line on a terminal, a line every ~10% otherwise

class Progress {
  public:
    Progress(std::size_t total, bool terminal) : terminal_(terminal) { state_.total = total; }

    void add(const shadow::PairRecord& record) {
        ++state_.done;
        if (record.verdict == shadow::VerdictKind::pass) ++state_.passes;
        if (record.verdict == shadow::VerdictKind::fail) ++state_.fails;
        if (record.verdict == shadow::VerdictKind::error) ++state_.errors;
        state_.elapsed_s = seconds_since(start_);
        const bool last = state_.done == state_.total;
        if (terminal_) {
            if (!last && Clock::now() - drawn_ < kRedrawInterval) return;
            drawn_ = Clock::now();
            std::cerr << "\r\x1b[Kturnout eval: " << shadow::progress_text(state_) << std::flush;
            if (last) std::cerr << '\n';
        } else if (shadow::progress_milestone(state_.done, state_.total)) {
            std::cerr << "turnout eval: " << shadow::progress_text(state_) << '\n';
        }
    }

  private:
    static double seconds_since(Clock::time_point start) {
        return std::chrono::duration<double>(Clock::now() - start).count();
    }

    shadow::EvalProgress state_;
    bool terminal_;
    Clock::time_point start_ = Clock::now();
    Clock::time_point drawn_{};
};

// ---------------------------------------------------------------------------------------------
// The run

/// What the coroutines share; lives on the stack of run_pairs for the io_context's whole run.
struct Run {
    CallPlan primary;
    CallPlan candidate;
    CallPlan judge;
    config::Duration timeout{};
    std::string template_text;
    config::JudgeConfig judge_config;  ///< swap, max_answer_bytes, pass_score
    std::vector<shadow::EvalPrompt> queue;
    std::size_t next = 0;
    std::vector<shadow::PairRecord> results;
    VerdictLog* log = nullptr;
    Progress* progress = nullptr;
};

shadow::SideRecord side_record(const Measured& measured, const config::PriceConfig& price) {
    shadow::SideRecord side;
    side.ok = measured.ok;
    side.error = measured.error;
    side.latency_ms = measured.latency_ms;
    side.ttft_ms = measured.ttft_ms;
    side.input_tokens = measured.usage.input;
    side.output_tokens = measured.usage.output;
    side.cost_usd = config::cost_usd(price, measured.usage.input, measured.usage.output);
    return side;
}

/// The judge's verdict on two chat.completion bodies (A = primary, B = candidate), asked the
/// way the shadow loop asks it (`judge.swap`, `judge.body`, `judge.max_answer_bytes`).
asio::awaitable<shadow::ParsedVerdict> judge_answers(Run* run, std::string request_json,
                                                     std::string primary_body,
                                                     std::string candidate_body,
                                                     std::string request_id) {
    shadow::JudgeInput input{std::move(request_json), shadow::answer_text_from_openai(primary_body),
                             shadow::answer_text_from_openai(candidate_body),
                             run->judge_config.pass_score, run->judge_config.max_answer_bytes};
    JudgeReading reading =
        co_await judge_pair(run->judge, run->judge_config, run->template_text, std::move(input),
                            std::move(request_id), run->timeout);
    co_return std::move(reading.parsed);
}

/// One prompt: both models at once, then the judge when both answered.
asio::awaitable<shadow::PairRecord> evaluate(Run* run, shadow::EvalPrompt prompt) {
    using namespace asio::experimental::awaitable_operators;
    const std::string id = "eval-" + std::to_string(prompt.line_number);
    auto primary_call = background_call(
        run->primary, shadow::request_with_model(prompt.request_json, run->primary.target.model),
        id + "-primary", run->timeout);
    auto candidate_call = background_call(
        run->candidate,
        shadow::request_with_model(prompt.request_json, run->candidate.target.model),
        id + "-candidate", run->timeout);
    std::tuple<Measured, Measured> answers =
        co_await (std::move(primary_call) && std::move(candidate_call));
    const Measured& primary = std::get<0>(answers);
    const Measured& candidate = std::get<1>(answers);

    shadow::PairRecord record;
    record.line_number = prompt.line_number;
    record.prompt_hash = prompt.hash;
    record.primary = side_record(primary, run->primary.provider.price);
    record.candidate = side_record(candidate, run->candidate.provider.price);
    shadow::ParsedVerdict verdict;
    if (record.judged()) {
        verdict =
            co_await judge_answers(run, prompt.request_json, primary.text, candidate.text, id);
    }
    shadow::settle_pair(record, verdict, run->judge_config.pass_score);
    co_return record;
}

/// Takes prompts from the shared queue until it is empty (one of `concurrency` workers).
asio::awaitable<void> worker(Run* run) {
    while (run->next < run->queue.size()) {
        shadow::EvalPrompt prompt = run->queue[run->next++];
        shadow::PairRecord record = co_await evaluate(run, std::move(prompt));
        run->log->append(record);
        run->progress->add(record);
        run->results.push_back(std::move(record));
    }
}

std::vector<shadow::PairRecord> run_pairs(std::shared_ptr<const upstream::Providers> providers,
                                          const config::RouteConfig& route, Run& run,
                                          unsigned concurrency) {
    asio::io_context io{1};
    upstream::Client client(io.get_executor());
    client.update(std::move(providers));
    run.primary = client.plan_for(routing::serving_target(route));
    run.candidate = client.plan_for(*route.candidate);
    run.judge = client.plan_for(upstream::judge_target(route.judge));
    run.judge.null_removes_field = true;
    std::exception_ptr failure;
    const std::size_t workers = std::min<std::size_t>(concurrency, run.queue.size());
    for (std::size_t i = 0; i < workers; ++i) {
        asio::co_spawn(io, worker(&run), [&failure](std::exception_ptr e) {
            if (e && !failure) failure = e;
        });
    }
    io.run();
    // The pools belong to this io_context: drop them before it goes.
    run.primary.pool.reset();
    run.candidate.pool.reset();
    run.judge.pool.reset();
    client.clear();
    if (failure) std::rethrow_exception(failure);
    return std::move(run.results);
}

// ---------------------------------------------------------------------------------------------
// The command

std::string target_name(const config::TargetConfig& target) {
    return target.provider + "/" + target.model;
}

shadow::ReportContext make_context(const EvalArgs& args, const config::RouteConfig& route,
                                   const Prompts& prompts, const shadow::ResumePlan& plan) {
    shadow::ReportContext context;
    context.route = route.name;
    context.primary = target_name(routing::serving_target(route));
    context.candidate = target_name(*route.candidate);
    context.judge = route.judge.provider + "/" + route.judge.model;
    context.prompts_file = args.prompts_path;
    context.out_dir = args.out_dir;
    context.broken_lines = prompts.broken_lines;
    context.reused = plan.reused.size();
    context.sent = plan.to_send.size();
    context.params = shadow::eval_params(route);
    return context;
}

std::shared_ptr<const upstream::Providers> build_providers(
    std::shared_ptr<const config::Config> config) {
    try {
        return upstream::Providers::build(std::move(config));
    } catch (const std::exception& e) {
        throw EvalError(e.what());
    }
}

/// The summary on stdout, report.md and scores.svg in `out`; returns the exit code.
int report(std::vector<shadow::PairRecord> records, const shadow::ReportContext& context,
           const std::filesystem::path& out) {
    const shadow::EvalSummary summary = shadow::summarise(std::move(records), context.params);
    write_text(out / "report.md", shadow::render_report(summary, context));
    write_text(out / "scores.svg", shadow::render_svg(summary, context));
    std::cout << shadow::render_summary(summary, context) << std::flush;
    if (summary.judge_calls > 0 && summary.judge_failures == summary.judge_calls) {
        std::cerr << "turnout eval: every judge call failed (" << summary.judge_failures << " of "
                  << summary.judge_calls << "): no verdict to decide on\n";
    } else if (summary.all_judging_failed()) {
        std::cerr << "turnout eval: no pair got a pass/fail verdict\n";
    }
    return shadow::exit_code(summary);
}

int run_eval(const EvalArgs& args) {
    const auto config = load_config(args.config_path);
    config::LogConfig log = config->log;
    log.level = "error";  // stdout carries the summary; upstream trouble shows in the verdicts
    init_logging(log);
    const config::RouteConfig route = find_route(*config, args);
    Run run;
    run.template_text = judge_template(route);
    run.timeout = route.timeout;
    run.judge_config = route.judge;
    const Prompts prompts = load_prompts(args);
    const auto providers = build_providers(config);

    std::error_code ec;
    std::filesystem::create_directories(args.out_dir, ec);
    if (ec) throw EvalError("cannot create " + args.out_dir + ": " + ec.message());
    const std::filesystem::path out(args.out_dir);
    VerdictLog verdicts(out / "verdicts.jsonl");
    shadow::ResumePlan plan = shadow::plan_resume(prompts.usable, verdicts.saved());
    const shadow::ReportContext context = make_context(args, route, prompts, plan);
    std::cerr << "turnout eval: route " << route.name << ": " << prompts.usable.size()
              << " prompts, " << plan.reused.size() << " already judged in "
              << (out / "verdicts.jsonl").string() << ", sending " << plan.to_send.size()
              << " (concurrency " << args.concurrency << ")\n";

    if (const std::size_t other = verdicts.saved().size() - plan.reused.size(); other > 0) {
        std::cerr << "turnout eval: " << other << " records in "
                  << (out / "verdicts.jsonl").string()
                  << " match no prompt of this run (other lines, edited lines or --limit): not "
                     "counted\n";
    }
    std::vector<shadow::PairRecord> records = std::move(plan.reused);
    if (!plan.to_send.empty()) {
        Progress progress(plan.to_send.size(), ::isatty(STDERR_FILENO) == 1);
        run.queue = std::move(plan.to_send);
        run.log = &verdicts;
        run.progress = &progress;
        for (auto& record : run_pairs(providers, route, run, args.concurrency)) {
            records.push_back(std::move(record));
        }
    }
    verdicts.check();
    return report(std::move(records), context, out);
}

}  // namespace

int eval_main(int argc, char** argv) {
    int code = 2;
    try {
        const EvalArgs args = parse_args(argc, argv);
        if (args.help) {
            std::cout << kUsage;
            return 0;
        }
        code = run_eval(args);
    } catch (const UsageError& e) {
        std::cerr << "turnout eval: " << e.what() << "\n\n" << kUsage;
        code = 2;
    } catch (const std::exception& e) {
        std::cerr << "turnout eval: " << e.what() << '\n';
        code = 2;
    }
    flush_logs();
    return code;
}

}  // namespace turnout::cli
