// The command line's definition, shared by the parser (cli.cc) and the
// documentation generated from it (cli_docs.cc: man pages, completion).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "orchestrator/commands.h"

namespace ro::cli {

struct ExitCode {
  std::string code;  // "0", "1", "N"
  std::string meaning;
};

// What a command's documentation says beyond its options.
struct CommandDoc {
  std::vector<std::string> description;  // paragraphs (man page DESCRIPTION)
  std::vector<ExitCode> exit_codes;
  // Further man page sections: title, then paragraphs.
  std::vector<std::pair<std::string, std::vector<std::string>>> sections;
};

// Options every command takes (logging) are in this group; the synopsis
// lists them once, not on every line.
inline constexpr const char* kLoggingGroup = "Logging";

struct Cli {
  std::unique_ptr<CLI::App> app;  // the top level: restore's options (the default command)
  CLI::App* restore = nullptr;
  CLI::App* dump = nullptr;
  CLI::App* check = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* image = nullptr;
  CLI::App* decode = nullptr;
  CLI::App* encode = nullptr;
  CLI::App* show = nullptr;

  RestoreArgs top_restore;
  RestoreArgs sub_restore;
  DumpArgs dump_args;
  CheckArgs check_args;
  VerifyArgs verify_args;
  std::string decode_file;
  bool pretty = false;
  std::string encode_in = "-";
  std::string encode_out = "-";
  std::string show_dir;
  bool list_faults = false;
  int verbose = 0;
  int log_level = -1;  // -vN / --log-level N; -1 when not given
  std::string log_file;
};

// Built in place: options hold pointers into the Cli.
std::unique_ptr<Cli> BuildCli();

// Every command with its own options, in the order the docs list them:
// the top level (restore), restore, dump, check, verify, image decode,
// image encode, image show.
std::vector<const CLI::App*> Commands(const Cli& cli);

// "restore-orch", "restore-orch dump", "restore-orch image decode".
std::string CommandPath(const CLI::App* app);
// The man page a command is documented in: "restore-orch-dump" (image's
// subcommands share "restore-orch-image"; the top level is "restore-orch").
std::string ManPageOf(const CLI::App* app);

const CommandDoc& DocOf(const CLI::App* app);

// "-D|--images DIR", "[--dry-run]", "[--external KEY=PATH ...]".
std::string OptionSynopsis(const CLI::Option* opt);
// All names of an option: "-D, --images, --images-dir".
std::vector<std::string> OptionNames(const CLI::Option* opt);
// The synopsis of one command, wrapped at `width` columns.
std::string CommandSynopsis(const CLI::App* app, size_t width = 100);
// The options a command lists in its help and man page, in order.
std::vector<const CLI::Option*> DocumentedOptions(const CLI::App* app);

}  // namespace ro::cli
