// The restore-orch command line: parses arguments and runs one subcommand.
// The same definition generates the usage block of --help (which README.md
// shows), the man pages and the bash completion, so they cannot disagree.
#pragma once

#include <map>
#include <string>

namespace ro {

// Exit statuses (each command's --help and man page say which it uses):
// 0 success, 1 failure while running, 2 invalid images, 3 a dump that
// refused an object restore-orch cannot checkpoint or restore, 64 bad usage
// (EX_USAGE), 75 a dump that may succeed if tried again (EX_TEMPFAIL).
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadImages = 2;
inline constexpr int kExitRefused = 3;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitTryAgain = 75;

int RunCli(int argc, char** argv);

// The usage block `restore-orch --help` prints: one line (or wrapped lines)
// per command, every option of each.
std::string CliSynopsis();

// Man pages in roff, by file name: restore-orch.1 and restore-orch-COMMAND.1
// for restore, dump, check, verify and image.
std::map<std::string, std::string> CliManPages();

// A bash completion script for restore-orch: commands, and each command's
// own options.
std::string CliBashCompletion();

}  // namespace ro
