// restore-orch-docs OUTDIR: writes the man pages (OUTDIR/man/*.1) and the
// bash completion (OUTDIR/restore-orch.bash) generated from restore-orch's
// command line definition. Run by the build; not installed.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "orchestrator/cli.h"

namespace {

bool Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "restore-orch-docs: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: restore-orch-docs OUTDIR\n");
    return 64;
  }
  std::string dir = argv[1];
  ::mkdir(dir.c_str(), 0755);
  ::mkdir((dir + "/man").c_str(), 0755);
  for (const auto& [name, text] : ro::CliManPages()) {
    if (!Write(dir + "/man/" + name, text)) return 1;
  }
  if (!Write(dir + "/restore-orch.bash", ro::CliBashCompletion())) return 1;
  if (!Write(dir + "/usage.txt", ro::CliSynopsis())) return 1;
  return 0;
}
