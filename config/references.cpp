#include "config/references.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "config/values.hpp"

namespace turnout::config::detail {
namespace {

bool is_env_name(std::string_view name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
}

}  // namespace

bool References::define_provider(Position key_at, std::string_view path, const std::string& name) {
    if (provider_names_.insert(name).second) return true;
    diag_.error(key_at, path, "duplicate provider " + in_quotes(name));
    return false;
}

void References::define_key(const Field& f, const std::string& name) {
    if (!key_names_.insert(name).second) diag_.error(f, "duplicate key name " + in_quotes(name));
}

void References::define_route(const Field& f, const std::string& name) {
    auto [it, inserted] = route_lines_.emplace(name, f.at.line);
    if (!inserted) {
        diag_.error(f, "duplicate route name " + in_quotes(name) + " (first defined on line " +
                           std::to_string(it->second) + ")");
    }
}

void References::read_provider(const MapView& m, std::string& out) {
    if (!m.required_text("provider", out)) return;
    if (providers_known_ && provider_names_.count(out) == 0) {
        m.error("provider", "unknown provider " + in_quotes(out));
    }
}

bool References::check_key(const Field& f, const std::string& name) {
    if (key_names_.count(name) != 0) return true;
    diag_.error(f, "unknown client key " + in_quotes(name));
    return false;
}

void References::read_env_name(const MapView& m, std::string_view key, std::string& out) {
    if (!m.get(key) || !m.string(key, out) || out.empty()) return;
    const Field& f = *m.get(key);
    if (!is_env_name(out)) {
        // Never echo the value: a user may have pasted the secret itself here.
        diag_.error(f,
                    "must be the name of an environment variable (letters, digits and '_'), "
                    "not the secret itself");
        out.clear();
        return;
    }
    const char* value = std::getenv(out.c_str());
    if (value == nullptr) {
        report_env(f, "environment variable " + in_quotes(out) + " is not set");
    } else if (*value == '\0') {
        report_env(f, "environment variable " + in_quotes(out) + " is empty");
    }
}

void References::report_env(const Field& f, std::string_view message) {
    if (env_policy_ == EnvPolicy::require) {
        diag_.error(f, message);
    } else {
        diag_.warning(f, message);
    }
}

}  // namespace turnout::config::detail
