#pragma once
/// Records one observation in every metric family through the public API, so a rendered
/// exposition shows each family with its labels. Shared by unit_metrics and the
/// `metrics_sample` tool (tests/e2e/prometheus/) that feeds `promtool check metrics`.

#include "metrics/metrics.hpp"

namespace turnout::metrics::testing {

void record_one_of_each(Metrics& metrics);

}  // namespace turnout::metrics::testing
