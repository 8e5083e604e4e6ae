// The restore-orch command line: parses arguments and runs one subcommand.
#pragma once

namespace ro {

// Exit codes: 0 success, 1 failure while running, 2 invalid images,
// 64 bad usage, 75 a dump that may succeed if tried again (EX_TEMPFAIL).
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadImages = 2;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitTryAgain = 75;

int RunCli(int argc, char** argv);

}  // namespace ro
