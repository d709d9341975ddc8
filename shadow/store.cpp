// The store: its directory opened, and the verdict and event logs behind the API (records
// checked, reads filtered by route).
#include "shadow/store.hpp"

#include <rapidjson/document.h>
#include <unistd.h>

#include <limits>
#include <stdexcept>
#include <utility>

#include "shadow/append_log.hpp"
#include "shadow/disk_sync.hpp"
#include "shadow/json_util.hpp"
#include "shadow/store_files.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;
using Order = AppendLog::Order;

bool route_is(const rapidjson::Document& doc, std::string_view route) {
    auto it = doc.FindMember("route");
    return it != doc.MemberEnd() && it->value.IsString() &&
           std::string_view(it->value.GetString(), it->value.GetStringLength()) == route;
}

/// `json_line` without one trailing '\n' when it is then a single line holding a JSON object
/// (with "route" equal to `*route`, when given); nullopt otherwise (another newline would split
/// the record).
std::optional<std::string_view> record_line(const std::string& json_line,
                                            const std::string* route) {
    std::string_view line = json_line;
    if (!line.empty() && line.back() == '\n') {
        line.remove_suffix(1);
    }
    rapidjson::Document doc;
    if (line.find('\n') != std::string_view::npos || !parse_object(line, doc) ||
        (route != nullptr && !route_is(doc, *route))) {
        return std::nullopt;
    }
    return line;
}

/// Up to `limit` lines of `log` in `order` that parse as JSON objects `keep` accepts.
std::vector<std::string> collect(AppendLog& log, Order order, std::size_t limit,
                                 const std::function<bool(const rapidjson::Document&)>& keep) {
    std::vector<std::string> lines;
    if (limit == 0) {
        return lines;
    }
    log.scan(order, [&](std::string_view line) {
        rapidjson::Document doc;
        if (parse_object(line, doc) && keep(doc)) {
            lines.emplace_back(line);
        }
        return lines.size() < limit;
    });
    return lines;
}

}  // namespace

StateStore::StateStore(std::string path, StoreOptions options)
    : path_(std::move(path)),
      options_(std::move(options)),
      sync_(std::make_unique<const DiskSync>()) {
    std::string dir = path_;
    while (dir.size() > 1 && dir.back() == '/') {
        dir.pop_back();  // "state/" has parent "state" to std::filesystem: not what we mean
    }
    if (dir.empty()) {
        throw std::invalid_argument("state.path is empty");
    }
    make_private_dir(dir);
    routes_dir_ = dir + "/routes";
    make_private_dir(routes_dir_);
    if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0 ||
        ::access(routes_dir_.c_str(), R_OK | W_OK | X_OK) != 0) {
        throw std::system_error(errno_code(), "state.path '" + path_ + "' is not writable");
    }
    remove_temp_files();
    verdicts_ = std::make_unique<AppendLog>(dir, "verdicts.jsonl", options_, *sync_);
    events_ = std::make_unique<AppendLog>(dir, "events.jsonl", options_, *sync_);
}

StateStore::~StateStore() = default;

std::error_code StateStore::append_verdict(const std::string& route, const std::string& json_line) {
    const auto line = record_line(json_line, &route);
    if (!line) {
        options_.warn("verdict of route '" + route +
                      "' not logged: not a one-line JSON object with a matching \"route\"");
        return std::make_error_code(std::errc::invalid_argument);
    }
    return verdicts_->append(*line);
}

std::error_code StateStore::sync_logs() {
    const auto verdicts = verdicts_->sync();
    const auto events = events_->sync();
    return verdicts ? verdicts : events;
}

std::error_code StateStore::append_event(const std::string& json_line) {
    const auto line = record_line(json_line, nullptr);
    if (!line) {
        options_.warn("event not logged: not a one-line JSON object");
        return std::make_error_code(std::errc::invalid_argument);
    }
    return events_->append(*line);
}

std::vector<std::string> StateStore::latest_verdicts(const std::string& route, std::size_t limit) {
    return collect(*verdicts_, Order::newest_first, limit,
                   [&](const rapidjson::Document& doc) { return route_is(doc, route); });
}

std::vector<std::string> StateStore::all_verdicts(const std::string& route) {
    return collect(*verdicts_, Order::oldest_first, std::numeric_limits<std::size_t>::max(),
                   [&](const rapidjson::Document& doc) { return route_is(doc, route); });
}

std::vector<std::string> StateStore::latest_events(std::size_t limit) {
    return collect(*events_, Order::newest_first, limit,
                   [](const rapidjson::Document&) { return true; });
}

}  // namespace turnout::shadow
