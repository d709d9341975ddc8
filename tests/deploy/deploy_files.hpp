#pragma once
/// The PromQL expressions of deploy/grafana/dashboard.json and deploy/prometheus/alerts.yml,
/// shared by unit_metrics (names and labels checks) and metrics_tool (promtool and the live
/// Prometheus test).

#include <string>
#include <vector>

namespace turnout::metrics::testing {

/// One expression and where it came from, for messages.
struct Expr {
    std::string where;
    std::string text;
};

/// Every `expr` (panel targets, annotations) and `definition` (template variables) in the
/// dashboard. Throws std::runtime_error when the file is not JSON.
std::vector<Expr> dashboard_exprs(const std::string& dashboard_path);

/// Every rule's `expr`; with `annotations`, also every annotation's text.
std::vector<Expr> alert_exprs(const std::string& rules_path,
                              std::vector<Expr>* annotations = nullptr);

/// A dashboard expression as Prometheus itself would run it: Grafana's variables replaced
/// ($__rate_interval and $__interval by 1m, $__range by 1h, $route by .*). Returns "" for
/// Grafana-only queries such as `label_values(...)`.
std::string as_promql(const std::string& grafana_expr);

}  // namespace turnout::metrics::testing
