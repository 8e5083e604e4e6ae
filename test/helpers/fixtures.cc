#include "test/helpers/fixtures.h"

#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "images/image_file.h"
#include "images/proto/core.pb.h"

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
  return FitRlimitsToThisMachine(work.File("img"));
}

std::string FitRlimitsToThisMachine(const std::string& img_dir) {
  for (const auto& e : std::filesystem::directory_iterator(img_dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("core-", 0) != 0) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in) return "read " + name;
    auto file = images::ParseImageFile(bytes, name, images::Limits{});
    if (!file.ok()) return name + ": " + file.error().ToString();
    bool changed = false;
    for (images::Entry& entry : file->entries) {
      auto& core = static_cast<img::core_entry&>(*entry.message);
      if (!core.has_tc() || !core.tc().has_rlimits()) continue;
      auto& list = *core.mutable_tc()->mutable_rlimits()->mutable_rlimits();
      for (int r : {RLIMIT_NPROC, RLIMIT_SIGPENDING}) {
        rlimit own{};
        if (r >= list.size() || ::getrlimit(static_cast<__rlimit_resource>(r), &own) != 0) continue;
        img::rlimit_entry& l = list[r];
        if (l.max() <= own.rlim_max) continue;
        l.set_max(own.rlim_max);
        l.set_cur(std::min<uint64_t>(l.cur(), own.rlim_max));
        changed = true;
      }
    }
    if (!changed) continue;
    auto out = images::SerializeImage(*file);
    if (!out.ok()) return name + ": " + out.error().ToString();
    std::ofstream o(e.path(), std::ios::binary | std::ios::trunc);
    o << *out;
    if (!o.flush()) return "write " + name;
  }
  return "";
}

std::vector<std::string> FixtureRestoreArgs(const TempDir& work) {
  return {RestoreOrch(), "--images", work.File("img"), "--root", work.File("R"), "--external", "usr=/usr"};
}

}  // namespace ro::test
