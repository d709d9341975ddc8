#pragma once
/// `turnout demo`: the gateway on an embedded default config with simulated providers.

namespace turnout::cli {

/// argv[0] is "demo"; returns the process exit code.
int demo_main(int argc, char** argv);

}  // namespace turnout::cli
