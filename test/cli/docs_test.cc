// The documentation cannot disagree with the command line: every option
// --help lists is in the command's man page, the man pages render, the
// README's usage block is what --help prints and its exit statuses are each
// command's, and the bash completion offers each command its own options.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "shm/stages.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A man page as text to search: roff's \- is a plain hyphen.
std::string ManText(const std::string& page) {
  std::string text = ReadText(std::string(RO_DOCS_DIR) + "/man/" + page + ".1");
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "\\-") == 0) {
      out += '-';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The option names --help lists: the names at the start of its option lines.
std::set<std::string> HelpOptions(const std::string& help) {
  std::set<std::string> names;
  std::istringstream in(help);
  static const std::regex name(R"((^|[ ,])(--?[A-Za-z][A-Za-z0-9-]*))");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  -", 0) != 0) continue;
    std::string head = line.substr(0, line.find("  ", 2));  // names, then two spaces, then the description
    for (std::sregex_iterator it(head.begin(), head.end(), name), end; it != end; ++it) names.insert((*it)[2]);
  }
  return names;
}

struct Command {
  std::vector<std::string> words;
  std::string page;
};

const Command kCommands[] = {
    {{}, "restore-orch"},
    {{"restore"}, "restore-orch-restore"},
    {{"dump"}, "restore-orch-dump"},
    {{"check"}, "restore-orch-check"},
    {{"verify"}, "restore-orch-verify"},
    {{"image", "decode"}, "restore-orch-image"},
    {{"image", "encode"}, "restore-orch-image"},
    {{"image", "show"}, "restore-orch-image"},
};

RunResult Help(const Command& c) {
  std::vector<std::string> argv = {RestoreOrch()};
  argv.insert(argv.end(), c.words.begin(), c.words.end());
  argv.push_back("--help");
  return RunCommand(argv);
}

TEST(Docs, EveryOptionInHelpIsInTheManPage) {
  for (const Command& c : kCommands) {
    RunResult r = Help(c);
    ASSERT_EQ(r.status, 0) << c.page;
    std::set<std::string> options = HelpOptions(r.out);
    EXPECT_GE(options.size(), 4u) << c.page << ": too few options found in\n" << r.out;
    std::string man = ManText(c.page);
    ASSERT_FALSE(man.empty()) << c.page;
    for (const std::string& o : options) {
      if (o == "-h" || o == "--help") continue;  // every command's, said once in the synopsis
      EXPECT_NE(man.find("\\fB" + o + "\\fR"), std::string::npos) << c.page << ".1 lacks " << o;
    }
    // And the exit statuses --help gives.
    std::istringstream in(r.out.substr(r.out.find("Exit status:")));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line) && line.rfind("  ", 0) == 0) {
      if (line.rfind("      ", 0) == 0) continue;  // a wrapped meaning
      std::string code = line.substr(2, line.find(' ', 2) - 2);
      EXPECT_NE(man.find(".B " + code + "\n"), std::string::npos) << c.page << ".1 lacks exit status " << code;
    }
  }
}

TEST(Docs, ManPagesRenderWithoutWarnings) {
  if (RunCommand({"sh", "-c", "command -v groff"}).status != 0) GTEST_SKIP() << "groff is not installed (scripts/setup.sh installs it)";
  for (const char* page : {"restore-orch", "restore-orch-restore", "restore-orch-dump", "restore-orch-check", "restore-orch-verify",
                           "restore-orch-image"}) {
    RunResult r = RunCommand({"groff", "-man", "-Tutf8", "-ww", "-z", std::string(RO_DOCS_DIR) + "/man/" + page + ".1"});
    EXPECT_EQ(r.status, 0) << page;
    EXPECT_EQ(r.err, "") << page;
  }
}

// The block under README.md's "## Usage".
std::string ReadmeUsage() {
  std::string readme = ReadText(std::string(RO_SOURCE_DIR) + "/README.md");
  size_t at = readme.find("\n## Usage\n");
  if (at == std::string::npos) return {};
  size_t open = readme.find("```\n", at);
  size_t close = readme.find("\n```", open + 4);
  if (open == std::string::npos || close == std::string::npos) return {};
  return readme.substr(open + 4, close + 1 - open - 4);
}

TEST(Docs, ReadmeUsageIsWhatHelpPrints) {
  RunResult r = RunCommand({RestoreOrch(), "--help"});
  ASSERT_EQ(r.status, 0);
  size_t at = r.out.find("Usage:\n");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::string usage = r.out.substr(at + 7, r.out.find("\n\n", at) + 1 - at - 7);
  EXPECT_EQ(ReadmeUsage(), usage) << "README.md's usage block differs from --help's; --help prints:\n" << usage;
  EXPECT_EQ(usage, ReadText(std::string(RO_DOCS_DIR) + "/usage.txt"));
}

// README.md's exit-status table: a row per command naming each status its
// --help gives.
TEST(Docs, ReadmeExitStatusesAreEachCommands) {
  std::string readme = ReadText(std::string(RO_SOURCE_DIR) + "/README.md");
  for (const Command& c : kCommands) {
    std::string name = "`restore-orch";
    for (const std::string& w : c.words) name += " " + w;
    name += "`";
    if (c.words.empty()) continue;  // restore's row
    size_t row = readme.find("\n| " + name + " |");
    ASSERT_NE(row, std::string::npos) << "README.md has no exit-status row for " << name;
    std::string text = readme.substr(row + 1, readme.find('\n', row + 1) - row - 1);
    RunResult r = Help(c);
    std::istringstream in(r.out.substr(r.out.find("Exit status:")));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line) && line.rfind("  ", 0) == 0) {
      if (line.rfind("      ", 0) == 0) continue;
      std::string code = line.substr(2, line.find(' ', 2) - 2);
      EXPECT_NE(text.find("**" + code + "**"), std::string::npos) << name << " row lacks exit status " << code << ": " << text;
    }
  }
}

// README.md's list of fault points (under "## Fault injection") is what
// --list-faults prints, in its order: a new point cannot go unmentioned.
TEST(Docs, ReadmeFaultPointsAreWhatListFaultsPrints) {
  RunResult r = RunCommand({RestoreOrch(), "--list-faults"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> listed;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) listed.push_back(line.substr(0, line.find(' ')));
  }
  ASSERT_GE(listed.size(), 10u) << r.out;
  std::string readme = ReadText(std::string(RO_SOURCE_DIR) + "/README.md");
  size_t at = readme.find("\n## Fault injection\n");
  ASSERT_NE(at, std::string::npos);
  size_t open = readme.find("--list-faults`:", at);
  ASSERT_NE(open, std::string::npos) << "the section names no list";
  size_t close = readme.find(';', open);
  std::string text = readme.substr(open + 15, close - open - 15);
  std::vector<std::string> documented;
  static const std::regex name(R"([a-z][a-z0-9-]*)");
  for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it) documented.push_back(it->str());
  EXPECT_EQ(documented, listed) << "README.md lists:" << text;
}

// README.md's stage table (under "## How a restore runs") has one row per
// stage of the stage table, in its order.
TEST(Docs, ReadmeStageTableIsTheStageTable) {
  std::string readme = ReadText(std::string(RO_SOURCE_DIR) + "/README.md");
  size_t at = readme.find("\n| stage | once it has ended |\n");
  ASSERT_NE(at, std::string::npos);
  std::vector<std::string> rows;
  std::istringstream in(readme.substr(at + 1));
  std::string line;
  std::getline(in, line);  // the header
  std::getline(in, line);  // | --- | --- |
  while (std::getline(in, line) && line.rfind("| ", 0) == 0) rows.push_back(line.substr(2, line.find(" |", 2) - 2));
  std::vector<std::string> stages;
  for (const shm::StageInfo& s : shm::Stages()) stages.emplace_back(s.name);
  EXPECT_EQ(rows, stages);
  EXPECT_EQ(readme.find("planned but not restored yet"), std::string::npos);
}

// Runs the generated completion for the words typed so far (the last one
// being completed) and returns what it offers.
std::set<std::string> Complete(const std::vector<std::string>& words) {
  std::string array;
  for (const std::string& w : words) array += " '" + w + "'";
  std::string script = "source '" + std::string(RO_DOCS_DIR) + "/restore-orch.bash'; COMP_WORDS=(" + array +
                       "); COMP_CWORD=" + std::to_string(words.size() - 1) + "; _restore_orch; printf '%s\\n' \"${COMPREPLY[@]}\"";
  RunResult r = RunCommand({"bash", "-c", script});
  std::set<std::string> out;
  std::istringstream in(r.out);
  for (std::string w; std::getline(in, w);) {
    if (!w.empty()) out.insert(w);
  }
  return out;
}

TEST(Docs, BashCompletionOffersEachCommandItsOwnOptions) {
  std::set<std::string> dump = Complete({"restore-orch", "dump", "--"});
  for (const char* o : {"--tree", "--images", "--images-dir", "--leave-running", "--dry-run", "--freeze-timeout", "--action-script"}) {
    EXPECT_EQ(dump.count(o), 1u) << o;
  }
  for (const char* o : {"--root", "--detach", "--external", "--pidfile"}) EXPECT_EQ(dump.count(o), 0u) << o;
  EXPECT_EQ(Complete({"restore-orch", "d"}), (std::set<std::string>{"dump"}));
  EXPECT_EQ(Complete({"restore-orch", "image", ""}), (std::set<std::string>{"decode", "encode", "show"}));
  EXPECT_EQ(Complete({"restore-orch", "--autofs-orphans", ""}), (std::set<std::string>{"fail", "catatonic"}));
  std::set<std::string> features = Complete({"restore-orch", "check", "--feature", "clone"});
  EXPECT_EQ(features, (std::set<std::string>{"clone3-set-tid", "clone3_set_tid"}));
  std::set<std::string> top = Complete({"restore-orch", "--ext"});
  EXPECT_EQ(top, (std::set<std::string>{"--external", "--ext-mount-map"}));
}

}  // namespace
}  // namespace ro::test
