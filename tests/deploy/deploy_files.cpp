#include "tests/deploy/deploy_files.hpp"

#include <rapidjson/document.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace turnout::metrics::testing {
namespace {

void collect(const rapidjson::Value& value, const std::string& where, std::vector<Expr>& out) {
    if (value.IsObject()) {
        std::string here = where;
        if (value.HasMember("title") && value["title"].IsString()) {
            here = where + "/" + value["title"].GetString();
        } else if (value.HasMember("name") && value["name"].IsString()) {
            here = where + "/" + value["name"].GetString();
        }
        for (const auto& member : value.GetObject()) {
            const std::string key = member.name.GetString();
            if ((key == "expr" || key == "definition") && member.value.IsString()) {
                out.push_back({here + " " + key, member.value.GetString()});
            } else {
                collect(member.value, here, out);
            }
        }
    } else if (value.IsArray()) {
        for (const auto& item : value.GetArray()) collect(item, where, out);
    }
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos;
         at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
}

}  // namespace

std::vector<Expr> dashboard_exprs(const std::string& dashboard_path) {
    std::ifstream in(dashboard_path);
    std::ostringstream text;
    text << in.rdbuf();
    rapidjson::Document dashboard;
    dashboard.Parse(text.str().c_str());
    if (!in || dashboard.HasParseError()) {
        throw std::runtime_error(dashboard_path + ": not a JSON file");
    }
    std::vector<Expr> exprs;
    collect(dashboard, "dashboard", exprs);
    return exprs;
}

std::vector<Expr> alert_exprs(const std::string& rules_path, std::vector<Expr>* annotations) {
    const YAML::Node rules = YAML::LoadFile(rules_path);
    std::vector<Expr> exprs;
    for (const auto& group : rules["groups"]) {
        for (const auto& rule : group["rules"]) {
            const std::string name =
                rule["alert"] ? rule["alert"].as<std::string>() : rule["record"].as<std::string>();
            exprs.push_back({"alerts.yml/" + name, rule["expr"].as<std::string>()});
            if (annotations != nullptr && rule["annotations"]) {
                for (const auto& annotation : rule["annotations"]) {
                    annotations->push_back({"alerts.yml/" + name + " annotation",
                                            annotation.second.as<std::string>()});
                }
            }
        }
    }
    return exprs;
}

std::string as_promql(const std::string& grafana_expr) {
    if (grafana_expr.starts_with("label_values(")) return "";
    std::string promql = grafana_expr;
    replace_all(promql, "$__rate_interval", "1m");
    replace_all(promql, "$__interval", "1m");
    replace_all(promql, "$__range", "1h");
    replace_all(promql, "$route", ".*");
    return promql;
}

}  // namespace turnout::metrics::testing
