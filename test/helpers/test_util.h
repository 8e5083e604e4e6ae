// Shared by the tests: the demo image set, temporary directories, running
// the restore-orch binary.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "images/image_dir.h"
#include "images/image_file.h"

namespace ro::test {

using ImageSet = std::map<std::string, images::ImageFile>;

// scripts/demo-images/*.json, encoded in memory: a valid image set with
// sessions, a zombie, pipes with data, shared/slave mounts and AutoFS.
ImageSet DemoImages();
// The demo set as this kernel can restore it: whole, or, on a kernel
// without AutoFS (KernelHasAutofs), without its AutoFS mounts and their
// autofs-*.img (their masters keep their pipes).
ImageSet DemoImagesForThisKernel();

images::ImageFile CloneFile(const images::ImageFile& file);
ImageSet CloneSet(const ImageSet& set);
images::ImageDir ToImageDir(const ImageSet& set, const std::string& path = "mem");

template <class M>
M& Mutable(ImageSet& set, const std::string& name, size_t entry = 0) {
  return static_cast<M&>(*set.at(name).entries.at(entry).message);
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  void Write(const std::string& name, const std::string& bytes) const;
  std::string Read(const std::string& name) const;

 private:
  std::string path_;
};

struct RunResult {
  int status = -1;  // exit code, or 128+signal
  std::string out;
  std::string err;
};

// Runs argv[0] (searched in PATH) with `input` on stdin; killed after 120 s.
RunResult RunCommand(const std::vector<std::string>& argv, const std::string& input = "");

// Kills a restored tree by its root task (our child, or reparented to us)
// through a pidfd, and reaps it.
void KillTree(pid_t root);

// Kills the tree whose root is `pid` on every way out of a test body, before
// the body's directories go (a tree still writing into one would race
// their removal). Declared after them; pid 0 once killed.
struct KillAtEnd {
  pid_t pid = 0;
  ~KillAtEnd() {
    if (pid > 0) KillTree(pid);
  }
  void Now() {
    if (pid > 0) KillTree(pid);
    pid = 0;
  }
};

// Path of the restore-orch binary under test ($RESTORE_ORCH_UNDER_TEST when
// set: another build's binary, to see a test fail there).
std::string RestoreOrch();

// True when the running kernel has AutoFS: "autofs" is one of
// /proc/filesystems' types (a kernel built without CONFIG_AUTOFS_FS has no
// autofs filesystem and no /dev/autofs; restore-orch's check says so).
bool KernelHasAutofs();

}  // namespace ro::test

// In a GoogleTest body: skips, saying why, a test whose tree or images need
// AutoFS mounts when the kernel has none (ctest lists it as skipped).
#define RO_SKIP_WITHOUT_AUTOFS()                                                                       \
  if (!::ro::test::KernelHasAutofs())                                                                  \
  GTEST_SKIP() << "this kernel has no AutoFS (no autofs in /proc/filesystems: CONFIG_AUTOFS_FS unset)"

