#pragma once
/// The `turnout explain` command line: reads the config, finds the route, prints
/// shadow::render(shadow::explain(...)). No Beast, no sockets; cli/main.cpp dispatches to it.

namespace turnout::cli {

/// `turnout explain --config FILE --route NAME [--requests-per-hour N] [--runs N]`, given the
/// arguments after "explain". Exit 0, or 2 with a message on a bad command line or config.
int explain_main(int argc, char** argv);

}  // namespace turnout::cli
