// The controller's text forms: its whole state saved and restored (with the replay of the
// verdicts logged after the save), events as JSON, RFC 3339 times, verdict log lines.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "base/json_input.hpp"
#include "shadow/controller.hpp"
#include "shadow/controller_names.hpp"

namespace turnout::shadow {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

std::int64_t to_ns(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TimePoint from_ns(std::int64_t ns) {
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

void write_key(JsonWriter& w, std::string_view key) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void write_string(JsonWriter& w, std::string_view key, std::string_view value) {
    write_key(w, key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void write_uint(JsonWriter& w, std::string_view key, std::uint64_t value) {
    write_key(w, key);
    w.Uint64(value);
}

void write_double(JsonWriter& w, std::string_view key, double value) {
    write_key(w, key);
    w.Double(value);
}

void write_time(JsonWriter& w, std::string_view key, std::optional<TimePoint> time) {
    write_key(w, key);
    if (time) {
        w.Int64(to_ns(*time));
    } else {
        w.Null();
    }
}

void write_bits(JsonWriter& w, std::string_view key, const std::deque<bool>& bits) {
    std::string text;
    for (const bool bit : bits) text.push_back(bit ? '1' : '0');
    write_string(w, key, text);
}

/// Evidence's members with their JSON names, in the order they are written: `visit(name,
/// member)` for each (the members are std::uint32_t or double).
template <typename E, typename Visit>
void evidence_fields(E& e, Visit&& visit) {
    visit("samples", e.samples);
    visit("passes", e.passes);
    visit("fails", e.fails);
    visit("errors", e.errors);
    visit("pass_rate", e.pass_rate);
    visit("wilson_lower", e.wilson_lower);
    visit("sprt_llr", e.sprt_llr);
    visit("rollback_llr", e.rollback_llr);
    visit("live_requests", e.live_requests);
    visit("live_errors", e.live_errors);
    visit("candidate_error_rate", e.candidate_error_rate);
}

void write_evidence(JsonWriter& w, const Evidence& e) {
    w.StartObject();
    evidence_fields(e, [&w](std::string_view key, auto value) {
        if constexpr (std::is_floating_point_v<decltype(value)>) {
            write_double(w, key, value);
        } else {
            write_uint(w, key, value);
        }
    });
    w.EndObject();
}

void write_event(JsonWriter& w, const TransitionEvent& e) {
    w.StartObject();
    write_string(w, "time", rfc3339(e.time));
    write_time(w, "time_unix_ns", e.time);
    write_string(w, "kind", to_string(e.kind));
    write_string(w, "trigger", to_string(e.trigger));
    write_string(w, "from", to_string(e.from));
    write_string(w, "to", to_string(e.to));
    write_string(w, "from_side", to_string(e.from_side));
    write_string(w, "to_side", to_string(e.to_side));
    write_double(w, "candidate_share", e.candidate_share);
    write_uint(w, "ramp_step", e.ramp_step);
    write_string(w, "reason", e.reason);
    write_key(w, "evidence");
    write_evidence(w, e.evidence);
    w.EndObject();
}

[[noreturn]] void bad_state(std::string_view field) {
    throw std::invalid_argument("controller state: missing or invalid '" + std::string(field) +
                                "'");
}

/// Typed, checked access to one JSON object of a saved state.
class Fields {
    using Value = rapidjson::Value;

  public:
    Fields(const rapidjson::Value& value, std::string_view what) : value_(value) {
        if (!value.IsObject()) bad_state(what);
    }

    bool has(const char* name) const { return value_.HasMember(name); }

    const rapidjson::Value& at(const char* name) const {
        const auto it = value_.FindMember(name);
        if (it == value_.MemberEnd()) bad_state(name);
        return it->value;
    }
    std::uint64_t u64(const char* name) const {
        return typed(at(name), name, &Value::IsUint64, &Value::GetUint64);
    }
    std::uint32_t u32(const char* name) const {
        return typed(at(name), name, &Value::IsUint, &Value::GetUint);
    }
    double number(const char* name) const {
        return typed(at(name), name, &Value::IsNumber, &Value::GetDouble);
    }
    std::int64_t i64(const char* name) const {
        return typed(at(name), name, &Value::IsInt64, &Value::GetInt64);
    }
    std::string string(const char* name) const {
        const auto& v = at(name);
        if (!v.IsString()) bad_state(name);
        return std::string(v.GetString(), v.GetStringLength());
    }
    std::optional<TimePoint> optional_time(const char* name) const {
        const auto& v = at(name);
        if (v.IsNull()) return std::nullopt;
        return from_ns(typed(v, name, &Value::IsInt64, &Value::GetInt64));
    }
    TimePoint time(const char* name) const {
        const auto t = optional_time(name);
        if (!t) bad_state(name);
        return *t;
    }
    template <typename E, std::size_t N>
    E choice(const char* name, const std::array<E, N>& values) const {
        const auto value = from_name(string(name), values);
        if (!value) bad_state(name);
        return *value;
    }
    /// A string of '0' and '1' into `bits`; returns the number of ones.
    std::uint32_t bits(const char* name, std::deque<bool>& bits) const {
        std::uint32_t ones = 0;
        bits.clear();
        for (const char c : string(name)) {
            if (c != '0' && c != '1') bad_state(name);
            bits.push_back(c == '1');
            ones += c == '1';
        }
        return ones;
    }

  private:
    /// `v` read by `get` when `is` holds, else a bad state naming `name`.
    template <typename T>
    static T typed(const Value& v, const char* name, bool (Value::*is)() const,
                   T (Value::*get)() const) {
        if (!(v.*is)()) bad_state(name);
        return (v.*get)();
    }

    const Value& value_;
};

Evidence read_evidence(const Fields& f) {
    Evidence e;
    evidence_fields(e, [&f](const char* key, auto& value) {
        if constexpr (std::is_floating_point_v<std::remove_reference_t<decltype(value)>>) {
            value = f.number(key);
        } else {
            value = f.u32(key);
        }
    });
    return e;
}

TransitionEvent read_event(const Fields& f) {
    TransitionEvent e;
    e.time = from_ns(f.i64("time_unix_ns"));
    e.kind = f.choice("kind", kEventKinds);
    e.trigger = f.choice("trigger", kTriggers);
    e.from = f.choice("from", kRouteStates);
    e.to = f.choice("to", kRouteStates);
    e.from_side = f.choice("from_side", kSides);
    e.to_side = f.choice("to_side", kSides);
    e.candidate_share = f.number("candidate_share");
    e.ramp_step = f.u64("ramp_step");
    e.reason = f.string("reason");
    e.evidence = read_evidence(Fields(f.at("evidence"), "evidence"));
    return e;
}

}  // namespace

/// Reads and writes a Controller's private state; the one place that knows the JSON layout.
struct ControllerJson {
    static void write_config(JsonWriter& w, const config::PromotionConfig& p) {
        write_key(w, "config");
        w.StartObject();
        write_string(w, "mode", to_string(p.mode));
        write_double(w, "threshold", p.threshold);
        write_double(w, "rollback_threshold", p.rollback_threshold);
        write_double(w, "confidence", p.confidence);
        write_key(w, "ramp");
        w.StartArray();
        for (const std::uint32_t step : p.ramp) w.Uint(step);
        w.EndArray();
        w.EndObject();
    }

    static void read_config(const Fields& f, config::PromotionConfig& p) {
        p.mode = f.choice("mode", kPromotionModes);
        p.threshold = f.number("threshold");
        p.rollback_threshold = f.number("rollback_threshold");
        p.confidence = f.number("confidence");
        const auto& ramp = f.at("ramp");
        if (!ramp.IsArray() || ramp.Empty()) bad_state("ramp");
        p.ramp.clear();
        for (const auto& step : ramp.GetArray()) {
            if (!step.IsUint()) bad_state("ramp");
            p.ramp.push_back(step.GetUint());
        }
    }

    static void write_serving(JsonWriter& w, const Controller& c) {
        write_string(w, "state", to_string(c.state_));
        write_string(w, "pinned_side", to_string(c.pinned_side_));
        write_uint(w, "ramp_step", c.ramp_step_);
        write_time(w, "since", c.since_);
        write_time(w, "cooldown_until", c.cooldown_until_);
    }

    static void read_serving(const Fields& f, Controller& c) {
        c.state_ = f.choice("state", kRouteStates);
        c.pinned_side_ = f.choice("pinned_side", kSides);
        c.ramp_step_ = f.u64("ramp_step");
        if (c.ramp_step_ >= c.promotion_.ramp.size()) bad_state("ramp_step");
        c.since_ = f.time("since");
        c.cooldown_until_ = f.optional_time("cooldown_until");
    }

    static void write_evidence_state(JsonWriter& w, const Controller& c) {
        write_bits(w, "window", c.window_);
        write_bits(w, "recent_errors", c.recent_);
        write_double(w, "flip_llr", c.flip_llr_);
        write_uint(w, "flip_test", c.flip_test_);
        write_uint(w, "sprt_rejections", c.sprt_rejections_);
        write_time(w, "above_since", c.above_since_);
        write_uint(w, "error_run", c.error_run_);
        write_uint(w, "evidence_verdicts", c.evidence_verdicts_);
        write_uint(w, "total_verdicts", c.total_verdicts_);
        write_time(w, "last_verdict", c.last_verdict_);
    }

    static void read_evidence_state(const Fields& f, Controller& c) {
        c.window_passes_ = f.bits("window", c.window_);
        c.recent_errors_ = f.bits("recent_errors", c.recent_);
        c.flip_llr_ = f.number("flip_llr");
        c.sprt_rejections_ = f.u32("sprt_rejections");
        c.above_since_ = f.optional_time("above_since");
        c.error_run_ = f.u32("error_run");
        c.evidence_verdicts_ = f.u64("evidence_verdicts");
        c.total_verdicts_ = f.u64("total_verdicts");
        c.last_verdict_ = f.optional_time("last_verdict");
    }

    static void write_watch(JsonWriter& w, const Controller& c) {
        write_double(w, "rollback_llr", c.rollback_llr_);
        write_uint(w, "rollback_test", c.rollback_test_);
        write_bits(w, "live_errors", c.live_);
        write_time(w, "step_started", c.step_started_);
        write_uint(w, "step_samples", c.step_samples_);
        write_time(w, "stall_anchor", c.stall_anchor_);
        write_double(w, "mirrors_expected", c.mirrors_expected_);
    }

    static void read_watch(const Fields& f, Controller& c) {
        c.rollback_llr_ = f.number("rollback_llr");
        c.live_errors_ = f.bits("live_errors", c.live_);
        c.step_started_ = f.time("step_started");
        c.step_samples_ = f.u32("step_samples");
        c.stall_anchor_ = f.time("stall_anchor");
        c.mirrors_expected_ = f.number("mirrors_expected");
    }

    /// The spent budget. Absent (a state saved before it existed): the most tests the verdicts
    /// seen could have run, never fewer than ran (see from_json).
    static void read_test_counters(const Fields& f, Controller& c) {
        if (f.has("flip_test")) {
            c.flip_test_ = f.u64("flip_test");
            if (c.flip_test_ == 0) bad_state("flip_test");
        } else {
            c.flip_test_ = 1 + c.total_verdicts_ / fewest_to_reject(c.steps_.reject, c.steps_.fail);
        }
        if (f.has("rollback_test")) {
            c.rollback_test_ = f.u64("rollback_test");
            if (c.rollback_test_ == 0 && Controller::watched(c.state_)) bad_state("rollback_test");
        } else {
            c.rollback_test_ =
                (Controller::watched(c.state_) ? 1 : 0) +
                c.total_verdicts_ / fewest_to_reject(c.steps_.reject, -c.steps_.pass);
        }
    }

    static void read_events(const Fields& f, Controller& c) {
        const auto& events = f.at("events");
        if (!events.IsArray()) bad_state("events");
        for (const auto& event : events.GetArray()) {
            c.events_.push_back(read_event(Fields(event, "events")));
        }
    }
};

std::string Controller::to_json() const {
    rapidjson::StringBuffer buffer;
    JsonWriter w(buffer);
    w.StartObject();
    write_uint(w, "version", 1);
    write_string(w, "fingerprint", fingerprint_);
    ControllerJson::write_config(w, promotion_);
    ControllerJson::write_serving(w, *this);
    ControllerJson::write_evidence_state(w, *this);
    ControllerJson::write_watch(w, *this);
    write_key(w, "events");
    w.StartArray();
    for (const auto& event : events_) write_event(w, event);
    w.EndArray();
    w.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize());
}

Controller Controller::from_json(std::string_view json, const config::RouteConfig& route,
                                 std::string fingerprint, TimePoint now,
                                 const VerdictLogTail& log) {
    rapidjson::Document doc;
    // Full precision: the statistics must come back bit for bit, or a restart could decide
    // differently from an uninterrupted run.
    constexpr base::JsonInputOptions kOptions{.full_precision = true};
    if (!base::parse_json_input(json, doc, kOptions)) {
        throw std::invalid_argument("controller state: not valid JSON");
    }
    const Fields root(doc, "state");
    if (root.u32("version") != 1) bad_state("version");
    config::RouteConfig saved = route;
    ControllerJson::read_config(Fields(root.at("config"), "config"), saved.promotion);
    Controller c(saved, root.string("fingerprint"), root.time("since"));
    ControllerJson::read_serving(root, c);
    ControllerJson::read_evidence_state(root, c);
    ControllerJson::read_watch(root, c);
    ControllerJson::read_test_counters(root, c);
    ControllerJson::read_events(root, c);
    // Before reconfigure: the unsaved verdicts were judged under the saved configuration.
    c.replay_unsaved(log);
    c.reconfigure(now, route, std::move(fingerprint));
    return c;
}

void Controller::replay_unsaved(const VerdictLogTail& log) {
    if (!log) return;
    const std::uint64_t saved = total_verdicts_;
    // The log's times have millisecond precision.
    const TimePoint oldest = std::chrono::floor<std::chrono::milliseconds>(since_);
    std::vector<LoggedVerdict> run;  // newest first
    // The unsaved run is short (the state is saved within a second of a verdict): ask for a
    // few lines, and for more only while every line read still belongs to the run.
    for (std::size_t limit = 64;; limit *= 4) {
        const std::vector<std::string> lines = log(limit);
        run.clear();
        bool ended = false;
        for (const std::string& line : lines) {
            const auto verdict = parse_logged_verdict(line);
            if (!verdict || verdict->seq <= saved || verdict->time < oldest ||
                (!run.empty() && verdict->seq + 1 != run.back().seq)) {
                ended = true;
                break;
            }
            run.push_back(*verdict);
        }
        if (ended || lines.size() < limit) break;
    }
    for (auto it = run.rbegin(); it != run.rend(); ++it) {
        // Never back in time: the log keeps milliseconds, the state nanoseconds.
        const TimePoint at = std::max(it->time, last_verdict_.value_or(it->time));
        record_verdict(at, it->kind);
    }
}

std::optional<LoggedVerdict> parse_logged_verdict(std::string_view line) {
    rapidjson::Document doc;
    if (!base::parse_json_input(line, doc) || !doc.IsObject()) return std::nullopt;
    const auto seq = doc.FindMember("seq");
    const auto time = doc.FindMember("time");
    const auto verdict = doc.FindMember("verdict");
    if (seq == doc.MemberEnd() || !seq->value.IsUint64() || seq->value.GetUint64() == 0 ||
        time == doc.MemberEnd() || !time->value.IsString() || verdict == doc.MemberEnd() ||
        !verdict->value.IsString()) {
        return std::nullopt;
    }
    LoggedVerdict logged;
    logged.seq = seq->value.GetUint64();
    const auto kind =
        from_name(std::string_view(verdict->value.GetString(), verdict->value.GetStringLength()),
                  kVerdictKinds);
    if (!kind) return std::nullopt;
    logged.kind = *kind;
    const auto parsed_time = parse_rfc3339(time->value.GetString());
    if (!parsed_time) return std::nullopt;
    logged.time = *parsed_time;
    return logged;
}

std::optional<TimePoint> parse_rfc3339(const char* text) {
    // Exactly what rfc3339() writes: 2026-11-28T01:02:03.456Z.
    std::tm tm{};
    int millis = 0;
    int consumed = 0;
    if (std::sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &consumed) != 7 ||
        consumed != 24 || text[consumed] != '\0') {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const std::time_t seconds = timegm(&tm);
    if (seconds == static_cast<std::time_t>(-1)) return std::nullopt;
    return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
        std::chrono::seconds(seconds) + std::chrono::milliseconds(millis)));
}

std::string rfc3339(TimePoint t) {
    const auto ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch());
    const auto seconds = std::chrono::floor<std::chrono::seconds>(ms);
    const std::time_t tt = static_cast<std::time_t>(seconds.count());
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char text[64];
    const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>((ms - seconds).count()));
    return text;
}

std::string to_json(const TransitionEvent& event) {
    rapidjson::StringBuffer buffer;
    JsonWriter w(buffer);
    write_event(w, event);
    return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace turnout::shadow
