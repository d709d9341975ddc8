// metrics_tool: feeds promtool and the live Prometheus test from the metrics library and the
// deploy/ files, so no list of metric names or queries is copied into a script.
//
//   metrics_tool sample                      the exposition of a fresh Metrics after one
//                                            observation in every family (promtool check metrics)
//   metrics_tool dashboard-rules FILE.json   the dashboard's PromQL as a rules file of recording
//                                            rules (promtool check rules parses each query)
//   metrics_tool dashboard-queries FILE.json the dashboard's PromQL, one query a line

#include <yaml-cpp/yaml.h>

#include <exception>
#include <iostream>
#include <string>
#include <string_view>

#include "metrics/metrics.hpp"
#include "tests/deploy/deploy_files.hpp"
#include "tests/unit/metrics/sample_families.hpp"

namespace {

using turnout::metrics::testing::as_promql;
using turnout::metrics::testing::dashboard_exprs;

int dashboard_rules(const std::string& path) {
    YAML::Emitter out;
    out << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq;
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "dashboard";
    out << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
    int n = 0;
    for (const auto& expr : dashboard_exprs(path)) {
        const std::string promql = as_promql(expr.text);
        if (promql.empty()) continue;
        out << YAML::BeginMap;
        out << YAML::Key << "record" << YAML::Value << "dashboard:query_" + std::to_string(++n);
        out << YAML::Key << "expr" << YAML::Value << YAML::Literal << promql;
        out << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap << YAML::EndSeq << YAML::EndMap;
    std::cout << out.c_str() << '\n';
    return n > 0 ? 0 : 1;
}

int dashboard_queries(const std::string& path) {
    for (const auto& expr : dashboard_exprs(path)) {
        std::string promql = as_promql(expr.text);
        if (promql.empty()) continue;
        for (char& c : promql) {
            if (c == '\n') c = ' ';
        }
        std::cout << promql << '\n';
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string_view command = argc > 1 ? argv[1] : "";
    try {
        if (command == "sample" && argc == 2) {
            turnout::metrics::Metrics metrics;
            turnout::metrics::testing::record_one_of_each(metrics);
            std::cout << metrics.render();
            return 0;
        }
        if (command == "dashboard-rules" && argc == 3) return dashboard_rules(argv[2]);
        if (command == "dashboard-queries" && argc == 3) return dashboard_queries(argv[2]);
    } catch (const std::exception& e) {
        std::cerr << "metrics_tool: " << e.what() << '\n';
        return 2;
    }
    std::cerr << "usage: metrics_tool sample | dashboard-rules FILE | dashboard-queries FILE\n";
    return 2;
}
