#pragma once
/// `turnout eval`: the offline check before a switch (CONTRACT.md "Command line" and "Eval").
/// Each prompt of a JSON-lines file goes to a route's primary and candidate (concurrently,
/// `--concurrency` prompts in flight), the route's judge scores the pair with the shadow loop's
/// own prompt and parser, and the summary decides: switch / do not switch / inconclusive.
/// The statistics and renderings live in shadow/eval_report.hpp; this is the I/O around them.
///
/// No Beast in this header: main.cpp includes it.

namespace turnout::cli {

/// argv[0] is "eval". Returns the exit code: 0 when the verdict is "switch", 1 when it is not
/// (or inconclusive), 2 on errors (usage, config, no usable prompt, every judge call failed).
int eval_main(int argc, char** argv);

}  // namespace turnout::cli
