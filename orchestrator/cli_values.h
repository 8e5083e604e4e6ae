// Values of command-line options, checked before CLI11 converts them, so
// that a wrong value is one line a person would write, naming the option
// and what it wants ("expected ..., got 'X'"). Each returns a CLI11
// validator: an empty string accepts the value, anything else is the error.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace ro::cli {

// Seconds: a finite number > 0 and <= 1e6 ("30", "0.5").
CLI::Validator Seconds();
// A pid: 1 .. 4194303 (the kernel's PID_MAX_LIMIT - 1), digits only.
CLI::Validator ProcessId();
// A log level 0 .. 4 (CRIU's -v0 .. -v4).
CLI::Validator LogLevel();
// A path stat(2) finds and that is a directory / a regular file the
// caller may execute (option values such as --root and --action-script;
// image paths are checked when they are read: a missing image is exit 2).
CLI::Validator ExistingDir();
CLI::Validator Executable();
// One of `values`, spelled exactly.
CLI::Validator OneOf(std::vector<std::string> values);

}  // namespace ro::cli
