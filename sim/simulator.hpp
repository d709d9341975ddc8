#pragma once
/// `turnout simulate`: a fast fake upstream for tests, benchmarks and the demo.

namespace turnout::sim {

/// argv[0] is "simulate"; returns the process exit code.
int simulate_main(int argc, char** argv);

}  // namespace turnout::sim
