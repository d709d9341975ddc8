// Every metric the Grafana dashboard and the alert rules name is one turnout exposes, used the
// way its type allows (counters and buckets inside rate/increase, histograms through _bucket),
// with label names it has and enum label values it can take. The reference is what a fresh
// Metrics renders after one observation in each family: no copy of the list is kept here.

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/metrics.hpp"
#include "tests/deploy/deploy_files.hpp"
#include "tests/unit/metrics/exposition.hpp"
#include "tests/unit/metrics/sample_families.hpp"

namespace turnout::metrics {
namespace {

using testing::Exposition;
using testing::Expr;

std::string source_path(const std::string& relative) {
    return std::string(TURNOUT_SOURCE_DIR) + "/" + relative;
}

/// Everything turnout exposes, with every label a series carries and every value it takes.
struct Reference {
    Exposition exposition;
    std::map<std::string, std::set<std::string>> label_values;  // label -> values seen

    Reference() {
        Metrics metrics;
        testing::record_one_of_each(metrics);
        exposition = testing::parse_exposition(metrics.render());
        for (const auto& sample : exposition.samples) {
            for (const auto& [name, value] : sample.labels) label_values[name].insert(value);
        }
    }
};

const Reference& reference() {
    static const Reference instance;
    return instance;
}

/// Labels whose values come from config names or are numbers, not from a closed enum.
bool open_valued(const std::string& label) {
    return label == "route" || label == "provider" || label == "model" || label == "code" ||
           label == "le" || label == "job" || label == "instance";
}

struct Use {
    std::string name;  // as written
    std::string family;
    std::size_t at = 0;
    std::vector<std::tuple<std::string, std::string, std::string>> matchers;  // label, op, value
};

std::vector<Use> metric_uses(const std::string& expr) {
    static const std::regex name_re(R"(\bturnout_[a-zA-Z0-9_]*)");
    static const std::regex matcher_re(
        R"re(\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)")re");
    std::vector<Use> uses;
    for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name_re);
         it != std::sregex_iterator(); ++it) {
        Use use;
        use.name = it->str();
        use.at = static_cast<std::size_t>(it->position());
        use.family = testing::family_of(use.name, reference().exposition.families);
        std::size_t pos = use.at + use.name.size();
        if (pos < expr.size() && expr[pos] == '{') {
            const std::size_t close = expr.find('}', pos);
            const std::string body = expr.substr(pos + 1, close - pos - 1);
            for (auto m = std::sregex_iterator(body.begin(), body.end(), matcher_re);
                 m != std::sregex_iterator(); ++m) {
                use.matchers.emplace_back((*m)[1].str(), (*m)[2].str(), (*m)[3].str());
            }
        }
        uses.push_back(std::move(use));
    }
    return uses;
}

void check_expr(const Expr& expr) {
    SCOPED_TRACE(expr.where + ": " + expr.text);
    const auto& families = reference().exposition.families;
    const std::vector<Use> uses = metric_uses(expr.text);
    std::set<std::string> labels_in_scope = {"job", "instance"};
    for (const Use& use : uses) {
        const auto family = families.find(use.family);
        ASSERT_NE(family, families.end()) << use.name << " is not a metric turnout exposes";
        const std::string& type = family->second.type;
        if (type == "histogram") {
            EXPECT_NE(use.name, use.family)
                << use.name << " is a histogram: use _bucket, _sum or _count";
        }
        const bool is_bucket = use.name != use.family && use.name.ends_with("_bucket");
        // Counters and histogram series only make sense as rates or increases (or as the
        // source of a Grafana variable's label values).
        if (type == "counter" || type == "histogram") {
            static const std::regex rate_re(R"((rate|increase|irate|label_values)\(\s*$)");
            const std::string before = expr.text.substr(0, use.at);
            EXPECT_TRUE(std::regex_search(before, rate_re))
                << use.name << " (" << type << ") outside rate()/increase()";
        }
        std::set<std::string> allowed = family->second.label_names;
        if (is_bucket) allowed.insert("le");
        labels_in_scope.insert(allowed.begin(), allowed.end());
        for (const auto& [label, op, value] : use.matchers) {
            EXPECT_TRUE(allowed.contains(label)) << use.name << " has no label " << label;
            if (open_valued(label) || (op != "=" && op != "=~")) continue;
            const auto& seen = reference().label_values.at(label);
            std::stringstream alternatives(value);
            std::string alternative;
            while (std::getline(alternatives, alternative, '|')) {
                if (op == "=~" && !std::regex_match(alternative, std::regex("[a-z0-9_]+"))) {
                    continue;
                }
                EXPECT_TRUE(seen.contains(alternative))
                    << label << "=\"" << alternative << "\" is not a value turnout uses";
            }
        }
    }
    static const std::regex grouping_re(
        R"(\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\))");
    for (auto it = std::sregex_iterator(expr.text.begin(), expr.text.end(), grouping_re);
         it != std::sregex_iterator(); ++it) {
        std::stringstream names((*it)[2].str());
        std::string label;
        while (std::getline(names, label, ',')) {
            label.erase(0, label.find_first_not_of(" \n"));
            label.erase(label.find_last_not_of(" \n") + 1);
            if (label.empty()) continue;
            EXPECT_TRUE(labels_in_scope.contains(label))
                << (*it)[1].str() << " (" << label << "): no metric in the expression has it";
        }
    }
}

TEST(DashboardAndRules, ReferenceCoversEveryFamily) {
    // record_one_of_each must touch every family, or the checks below would miss labels.
    for (const auto& [name, family] : reference().exposition.families) {
        EXPECT_GT(family.samples, 0u) << name << " has no sample: extend record_one_of_each";
    }
    EXPECT_GE(reference().exposition.families.size(), 15u);
}

TEST(DashboardAndRules, DashboardUsesOnlyExposedMetrics) {
    const std::vector<Expr> exprs =
        testing::dashboard_exprs(source_path("deploy/grafana/dashboard.json"));
    ASSERT_GE(exprs.size(), 20u);
    std::set<std::string> used;
    for (const Expr& expr : exprs) {
        check_expr(expr);
        for (const Use& use : metric_uses(expr.text)) used.insert(use.family);
    }
    // And the reverse: every family turnout exposes is on some panel.
    for (const auto& [family, info] : reference().exposition.families) {
        EXPECT_TRUE(used.contains(family)) << family << " is on no panel";
    }
}

TEST(DashboardAndRules, AlertRulesUseOnlyExposedMetrics) {
    std::vector<Expr> annotations;
    const std::vector<Expr> exprs =
        testing::alert_exprs(source_path("deploy/prometheus/alerts.yml"), &annotations);
    ASSERT_GE(exprs.size(), 5u);
    for (const Expr& expr : exprs) check_expr(expr);
    // Metric names in annotations' prose must exist too.
    for (const Expr& annotation : annotations) {
        for (const Use& use : metric_uses(annotation.text)) {
            EXPECT_TRUE(reference().exposition.families.contains(use.family))
                << annotation.where << ": " << use.name;
        }
    }
}

// deploy/README.md documents every panel with the PromQL behind it, and every alert.
TEST(DashboardAndRules, ReadmeListsEveryPanelQueryAndAlert) {
    std::ifstream in(source_path("deploy/README.md"));
    std::ostringstream text;
    text << in.rdbuf();
    const std::string readme = text.str();
    ASSERT_FALSE(readme.empty());
    const std::vector<Expr> exprs =
        testing::dashboard_exprs(source_path("deploy/grafana/dashboard.json"));
    for (const Expr& expr : exprs) {
        if (expr.where.ends_with(" definition")) continue;  // the $route variable
        EXPECT_NE(readme.find(expr.text), std::string::npos)
            << expr.where << ": query missing from deploy/README.md:\n"
            << expr.text;
        // `where` is "dashboard/<dashboard title>/<panel title> expr".
        const std::size_t start = expr.where.find('/', expr.where.find('/') + 1) + 1;
        const std::string title = expr.where.substr(start, expr.where.size() - 5 - start);
        EXPECT_NE(readme.find(title), std::string::npos) << "panel missing: " << title;
    }
    for (const Expr& rule : testing::alert_exprs(source_path("deploy/prometheus/alerts.yml"))) {
        const std::string name = rule.where.substr(rule.where.find('/') + 1);
        EXPECT_NE(readme.find("`" + name + "`"), std::string::npos) << "alert missing: " << name;
    }
}

TEST(DashboardAndRules, CheckerCatchesMistakes) {
    // The checker itself: each of these must produce a failure.
    const std::vector<std::string> bad = {
        "rate(turnout_request_total[5m])",                   // misspelt
        "turnout_requests_total",                            // counter without rate
        "rate(turnout_request_duration_seconds[5m])",        // bare histogram
        R"(rate(turnout_requests_total{state="x"}[5m]))",    // foreign label
        R"(turnout_route_state{state="rolledback"})",        // unknown enum value
        "sum by (kind) (rate(turnout_requests_total[5m]))",  // label of no metric here
    };
    for (const std::string& text : bad) {
        ::testing::TestPartResultArray failures;
        {
            ::testing::ScopedFakeTestPartResultReporter reporter(
                ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD,
                &failures);
            check_expr({"self-test", text});
        }
        EXPECT_GT(failures.size(), 0) << "not caught: " << text;
    }
}

}  // namespace
}  // namespace turnout::metrics
