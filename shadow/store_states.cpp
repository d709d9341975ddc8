// The store's route states: one JSON file per route, replaced atomically, named by the route's
// reversible encoding.
#include <fcntl.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <climits>

#include "shadow/disk_sync.hpp"
#include "shadow/json_util.hpp"
#include "shadow/store.hpp"
#include "shadow/store_files.hpp"
#include "shadow/text_util.hpp"

namespace turnout::shadow {
namespace {

using namespace detail;

constexpr std::string_view kTempPrefix = ".tmp.";
constexpr std::string_view kStateSuffix = ".json";

int upper_hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace

void StateStore::remove_temp_files() {
    auto names = list_dir(routes_dir_);
    if (!names) {
        throw std::system_error(errno_code(), "cannot list " + routes_dir_);
    }
    bool removed = false;
    for (const auto& name : *names) {
        if (!name.starts_with(kTempPrefix)) {
            continue;
        }
        std::string file = routes_dir_ + "/" + name;
        if (::unlink(file.c_str()) == 0) {
            removed = true;
            options_.warn("removed " + file + " left by an interrupted save");
        } else {
            options_.warn("cannot remove " + file + ": " + errno_code().message());
        }
    }
    if (removed) {
        sync_->sync_dir(routes_dir_);
    }
}

std::string StateStore::encode_route_name(std::string_view route) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(route.size());
    for (char ch : route) {
        auto c = static_cast<unsigned char>(ch);
        if (is_name_char(c)) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
        }
    }
    return out;
}

std::optional<std::string> StateStore::decode_route_name(std::string_view stem) {
    if (stem.empty()) {
        return std::nullopt;
    }
    std::string out;
    for (std::size_t i = 0; i < stem.size(); ++i) {
        auto c = static_cast<unsigned char>(stem[i]);
        if (is_name_char(c)) {
            out.push_back(stem[i]);
            continue;
        }
        if (c != '%' || i + 2 >= stem.size()) {
            return std::nullopt;
        }
        int high = upper_hex_value(stem[i + 1]);
        int low = upper_hex_value(stem[i + 2]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        auto byte = static_cast<unsigned char>(high * 16 + low);
        if (is_name_char(byte)) {
            return std::nullopt;  // not canonical: two files could name one route
        }
        out.push_back(static_cast<char>(byte));
        i += 2;
    }
    return out;
}

std::error_code StateStore::save_route_state(const std::string& route, const std::string& json) {
    rapidjson::Document doc;
    if (route.empty() || !parse_object(json, doc)) {
        options_.warn("state of route '" + route +
                      "' not saved: " + (route.empty() ? "empty route name" : "not a JSON object"));
        return std::make_error_code(std::errc::invalid_argument);
    }
    std::string stem = encode_route_name(route);
    if (kTempPrefix.size() + stem.size() + kStateSuffix.size() > NAME_MAX) {
        options_.warn("state of route '" + route + "' not saved: name too long for a file name");
        return std::make_error_code(std::errc::filename_too_long);
    }
    std::string target = routes_dir_ + "/" + stem + std::string(kStateSuffix);
    std::string temp =
        routes_dir_ + "/" + std::string(kTempPrefix) + stem + std::string(kStateSuffix);

    std::lock_guard lock(states_mutex_);
    auto fail = [&](std::error_code ec, const char* step) {
        ::unlink(temp.c_str());
        options_.warn("saving the state of route '" + route + "' failed (" + step + " " + temp +
                      "): " + ec.message());
        return ec;
    };
    Fd fd = open_fd(temp, O_WRONLY | O_CREAT | O_TRUNC, kStoreFileMode);
    if (!fd) {
        return fail(errno_code(), "open");
    }
    std::size_t written = 0;
    if (auto ec = write_all(fd.get(), json, written)) {
        return fail(ec, "write");
    }
    if (auto ec = sync_->fsync(fd.get())) {
        return fail(ec, "fsync");
    }
    if (auto ec = fd.close()) {
        return fail(ec, "close");
    }
    if (::rename(temp.c_str(), target.c_str()) != 0) {
        return fail(errno_code(), "rename");
    }
    if (auto ec = sync_->sync_dir(routes_dir_)) {
        // The new state is in place; only its durability across a power loss is in doubt.
        options_.warn("fsync of " + routes_dir_ + " failed: " + ec.message());
        return ec;
    }
    return {};
}

std::map<std::string, std::string> StateStore::load_route_states() {
    std::map<std::string, std::string> states;
    std::lock_guard lock(states_mutex_);
    auto names = list_dir(routes_dir_);
    if (!names) {
        options_.warn("cannot list " + routes_dir_ + ": " + errno_code().message());
        return states;
    }
    for (const auto& name : *names) {
        std::string file = routes_dir_ + "/" + name;
        if (name.starts_with(kTempPrefix)) {
            continue;  // removed on open; one appearing now is not ours to judge
        }
        std::optional<std::string> route;
        if (name.ends_with(kStateSuffix)) {
            route = decode_route_name(
                std::string_view(name).substr(0, name.size() - kStateSuffix.size()));
        }
        if (!route) {
            options_.warn("ignoring " + file + ": not a route state file name");
            continue;
        }
        std::error_code ec;
        auto content = read_small_file(file, ec);
        if (!content) {
            options_.warn("ignoring " + file + ": " + ec.message());
            continue;
        }
        rapidjson::Document doc;
        if (!parse_object(*content, doc)) {
            options_.warn("ignoring " + file + ": corrupt route state (not a JSON object)");
            continue;
        }
        states.emplace(std::move(*route), std::move(*content));
    }
    return states;
}

}  // namespace turnout::shadow
