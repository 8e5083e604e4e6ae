// The restore-orch command line: parses arguments and runs one subcommand.
#pragma once

namespace ro {

// Exit codes: 0 success, 1 failure while running, 2 invalid images,
// 64 bad usage.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadImages = 2;
inline constexpr int kExitUsage = 64;

int RunCli(int argc, char** argv);

}  // namespace ro
