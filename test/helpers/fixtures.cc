#include "test/helpers/fixtures.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <filesystem>

namespace ro::test {

std::string FixtureDir(const std::string& name) { return std::string(RO_CRIU_FIXTURES) + "/" + name; }

std::string PrepareFixture(const std::string& name, const TempDir& work) {
  std::error_code ec;
  std::filesystem::copy(FixtureDir(name) + "/img", work.File("img"), std::filesystem::copy_options::recursive, ec);
  if (ec) return "copy " + name + "/img: " + ec.message();
  for (const auto& e : std::filesystem::directory_iterator(work.File("img"))) {
    std::filesystem::permissions(e.path(), std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  }
  if (::mkdir(work.File("R").c_str(), 0755) != 0) return "mkdir R";
  if (::mount("fx-root", work.File("R").c_str(), "tmpfs", 0, "size=16m,mode=0755") != 0) return "mount the root tmpfs";
  RunResult tar = RunCommand({"tar", "-C", work.File("R"), "-xzpf", FixtureDir(name) + "/root.tar.gz", "--numeric-owner"});
  if (tar.status != 0) return "unpack root.tar.gz: " + tar.err;
  return "";
}

std::vector<std::string> FixtureRestoreArgs(const TempDir& work) {
  return {RestoreOrch(), "--images", work.File("img"), "--root", work.File("R"), "--external", "usr=/usr"};
}

}  // namespace ro::test
