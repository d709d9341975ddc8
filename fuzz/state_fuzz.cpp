// What turnout reads back from disk and from `turnout eval` files: a route's saved controller
// state (Controller::from_json, then driven a little: a restored state must not break the
// controller later), the durable store's files (route states, verdict and event logs, read
// back through StateStore from a scratch directory) and eval's prompt and verdict lines.
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "shadow/controller.hpp"
#include "shadow/eval_report.hpp"
#include "shadow/store.hpp"

namespace shadow = turnout::shadow;
namespace fs = std::filesystem;

namespace {

turnout::config::RouteConfig route_config() {
    turnout::config::RouteConfig route;
    route.name = "chat";
    route.primary.emplace().provider = "p";
    route.primary->model = "model-a";
    route.candidate.emplace().provider = "p";
    route.candidate->model = "model-b";
    return route;
}

void restore_controller(std::string_view text) {
    static const auto route = route_config();
    const shadow::TimePoint now{std::chrono::seconds(1'800'000'000)};
    try {
        auto controller = shadow::Controller::from_json(text, route, "fingerprint", now);
        const std::string saved = controller.to_json();
        for (const auto verdict :
             {shadow::VerdictKind::pass, shadow::VerdictKind::fail, shadow::VerdictKind::error}) {
            controller.record_verdict(now + std::chrono::seconds(1), verdict);
        }
        controller.record_live_result(now + std::chrono::seconds(2), true, true);
        controller.tick(now + std::chrono::hours(1));
        (void)controller.status();
        (void)controller.take_events();
        // What it saves, it restores.
        (void)shadow::Controller::from_json(saved, route, "fingerprint", now);
    } catch (const std::invalid_argument&) {
        // The documented answer to text that is not a saved state: start-up logs and skips it.
    }
}

void read_eval_files(std::string_view text) {
    const auto prompts = shadow::parse_prompts(text);
    for (const auto& problem : prompts.problems) (void)shadow::format_problem("p.jsonl", problem);
    const auto saved = shadow::parse_verdicts_file(text);
    for (const auto& record : saved.records) {
        // A record written back and read again is the same record (resume relies on it).
        const auto again = shadow::parse_record(shadow::to_json_line(record));
        if (!again || !(*again == record)) std::abort();
    }
    (void)shadow::plan_resume(prompts.prompts, saved.records);
    (void)shadow::canonical_json(text);
    (void)shadow::request_with_model(text, "model-b");
}

void write(const fs::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

void read_store(std::string_view text) {
    // One scratch directory per fuzzing process, on tmpfs when there is one.
    static const fs::path dir = [] {
        const fs::path base =
            fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
        fs::path d = base / ("turnout-state-fuzz-" + std::to_string(::getpid()));
        fs::remove_all(d);
        fs::create_directories(d / "routes");
        std::atexit([] {
            std::error_code ec;
            fs::remove_all(
                fs::path("/dev/shm") / ("turnout-state-fuzz-" + std::to_string(::getpid())), ec);
            fs::remove_all(
                fs::temp_directory_path() / ("turnout-state-fuzz-" + std::to_string(::getpid())),
                ec);
        });
        return d;
    }();
    write(dir / "routes" / "chat.json", text);
    write(dir / "verdicts.jsonl", text);
    write(dir / "events.jsonl", text);
    shadow::StoreOptions options;
    options.sync_every_append = false;
    options.read_block_bytes = 1 + text.size() % 97;  // blocks split lines anywhere
    shadow::StateStore store(dir.string(), options);
    (void)store.load_route_states();
    (void)store.latest_verdicts("chat", 3);
    (void)store.all_verdicts("chat");
    (void)store.latest_events(3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    restore_controller(text);
    read_eval_files(text);
    read_store(text);
    return 0;
}
