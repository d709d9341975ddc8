#pragma once
/// Internal to the loader: the names a config defines (providers, client keys, routes) and
/// the environment variables it names. Definitions are recorded as sections are read;
/// references are checked against them, so sections are read in dependency order (keys and
/// providers before routes), whatever the order of the file.

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "config/loader.hpp"
#include "config/yaml_reader.hpp"

namespace turnout::config::detail {

class References {
  public:
    References(Diagnostics& diag, EnvPolicy env_policy) : diag_(diag), env_policy_(env_policy) {}

    /// The providers section is a map: from now on a reference to a provider not defined is
    /// an error. (While the section is broken, every reference would be a false alarm.)
    void providers_listed() { providers_known_ = true; }

    /// A provider named by the key at `key_at`; false (reported) when the name is taken.
    bool define_provider(Position key_at, std::string_view path, const std::string& name);
    /// A client key's `name`; reports a name already taken.
    void define_key(const Field& f, const std::string& name);
    /// A route's `name`; reports a name already taken, with the line of the first.
    void define_route(const Field& f, const std::string& name);

    /// The required `provider` of a target or a judge: a non-empty name of a provider
    /// defined. Reported at the value that names the missing provider.
    void read_provider(const MapView& m, std::string& out);
    /// A client key named in a route's `match.keys`; false (reported) when it is not defined.
    bool check_key(const Field& f, const std::string& name);

    /// The name of an environment variable at `key` (only the name is kept). An unset or
    /// empty variable is an error or a warning, as EnvPolicy says; a value that cannot be a
    /// name (a pasted secret, say) is an error that does not echo it, and `out` is cleared.
    void read_env_name(const MapView& m, std::string_view key, std::string& out);

  private:
    void report_env(const Field& f, std::string_view message);

    Diagnostics& diag_;
    EnvPolicy env_policy_;
    bool providers_known_ = false;  ///< false: the providers section itself is broken
    std::set<std::string, std::less<>> provider_names_;
    std::set<std::string, std::less<>> key_names_;
    std::map<std::string, int, std::less<>> route_lines_;  ///< route name -> line it is defined
};

}  // namespace turnout::config::detail
