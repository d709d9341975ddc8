// The public entry points: the text of the file, the root map, and the sections read in
// dependency order (sections.hpp), every problem collected into one Diagnostics.
#include "config/loader.hpp"

#include <yaml-cpp/yaml.h>

#include <exception>
#include <memory>
#include <string>

#include "base/bounded_file.hpp"
#include "config/sections.hpp"

namespace turnout::config {
namespace {

void load_root(detail::LoadContext& ctx, const YAML::Node& root, Config& config) {
    using namespace detail;
    if (root.IsNull()) {
        ctx.diag.error({}, "",
                       "the config is empty: at least one provider and one route are required");
        return;
    }
    MapView m(ctx.diag, Field{root, position_of(root.Mark()), ""},
              {"listen", "admin", "state", "limits", "log", "keys", "providers", "routes"});
    if (!m.valid()) return;
    load_process(ctx, m, config);
    // Routes refer to keys and providers, so those are read first whatever the file order.
    if (const auto* f = m.get("keys")) load_keys(ctx, *f, config.keys);
    if (m.require("providers")) load_providers(ctx, *m.get("providers"), config.providers);
    if (m.require("routes")) load_routes(ctx, *m.get("routes"), config.routes);
}

}  // namespace

LoadResult load_config_file(const std::string& path, EnvPolicy env_policy) {
    std::string text;
    std::string reason;
    if (!base::read_bounded_file(path, base::kMaxConfigFileBytes, text, reason)) {
        LoadResult result;
        result.errors.push_back(ConfigError{path + ":1:1: cannot read file: " + reason});
        return result;
    }
    return load_config_string(text, path, env_policy);
}

LoadResult load_config_string(const std::string& yaml_text, const std::string& display_path,
                              EnvPolicy env_policy) {
    detail::Diagnostics diag(display_path);
    detail::References refs(diag, env_policy);
    detail::LoadContext ctx{diag, refs};
    auto config = std::make_shared<Config>();
    config->source_path = display_path;
    try {
        const YAML::Node root = YAML::Load(yaml_text);
        load_root(ctx, root, *config);
    } catch (const YAML::Exception& e) {
        diag.error(detail::position_of(e.mark), "", "invalid YAML: " + e.msg);
    } catch (const std::exception& e) {
        diag.error({}, "", std::string("cannot load the config: ") + e.what());
    }
    return diag.finish(std::move(config));
}

}  // namespace turnout::config
