// What the command line's definition says of itself: its commands, their
// man pages and synopses (for --help, the man pages, the README and its
// test). The definition itself is BuildCli (cli.cc).
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "orchestrator/cli.h"
#include "orchestrator/cli_model.h"

namespace ro {
namespace cli {

std::vector<const CLI::App*> Commands(const Cli& c) {
  return {c.app.get(), c.restore, c.dump, c.check, c.verify, c.decode, c.encode, c.show};
}

std::string CommandPath(const CLI::App* app) {
  std::string path;
  for (const CLI::App* a = app; a != nullptr; a = a->get_parent()) path = a->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

std::string ManPageOf(const CLI::App* app) {
  if (app->get_parent() == nullptr) return "restore-orch";
  while (app->get_parent()->get_parent() != nullptr) app = app->get_parent();
  return "restore-orch-" + app->get_name();
}

std::vector<const CLI::Option*> DocumentedOptions(const CLI::App* app) {
  std::vector<const CLI::Option*> out;
  for (const CLI::Option* o : app->get_options()) {
    if (o->get_group().empty()) continue;  // hidden
    out.push_back(o);
  }
  return out;
}

std::vector<std::string> OptionNames(const CLI::Option* o) {
  std::vector<std::string> names;
  if (o->get_positional()) names.push_back(o->get_name(true, false));
  for (const std::string& s : o->get_snames()) names.push_back("-" + s);
  for (const std::string& l : o->get_lnames()) names.push_back("--" + l);
  return names;
}

std::string OptionSynopsis(const CLI::Option* o) {
  std::string s;
  if (o->get_positional()) {
    s = o->get_type_name();
  } else {
    if (!o->get_snames().empty()) s = "-" + o->get_snames()[0];
    if (!o->get_lnames().empty()) s += (s.empty() ? "--" : "|--") + o->get_lnames()[0];
    if (o->get_expected_max() > 0) s += " " + o->get_type_name();
  }
  if (o->get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll) s += " ...";
  return o->get_required() ? s : "[" + s + "]";
}

std::string CommandSynopsis(const CLI::App* app, size_t width) {
  std::string head = CommandPath(app);
  if (app->get_parent() == nullptr) head += " [restore]";
  if (app->get_name() == "restore") head = "restore-orch [restore]";
  std::vector<std::string> words;
  for (const CLI::Option* o : DocumentedOptions(app)) {
    if (o == app->get_help_ptr() || o->get_group() == kLoggingGroup || o->get_name() == "--version" ||
        o->get_name() == "--list-faults") {
      continue;
    }
    words.push_back(OptionSynopsis(o));
  }
  const std::string indent(std::string("restore-orch ").size(), ' ');
  std::string out = head, line = head;
  for (const std::string& w : words) {
    if (line.size() + 1 + w.size() > width && line.size() > indent.size()) {
      out += "\n" + indent;
      line = indent;
    } else {
      out += " ";
      line += " ";
    }
    out += w;
    line += w;
  }
  return out + "\n";
}

}  // namespace cli

std::string CliSynopsis() {
  auto c = cli::BuildCli();
  std::string out;
  for (const CLI::App* app : {c->restore, c->dump, c->check, c->verify, c->decode, c->encode, c->show}) {
    out += cli::CommandSynopsis(app);
  }
  out += "restore-orch --list-faults\n";
  out += "restore-orch --help | --version | COMMAND --help\n";
  out += "every command also takes [-v|-vv|-v0..-v4|--log-level N] [-o|--log-file FILE] (image decode and encode: "
         "--log-file only)\n";
  return out;
}

}  // namespace ro
