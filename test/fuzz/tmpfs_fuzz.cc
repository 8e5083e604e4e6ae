// Fuzz target for the tmpfs archive unpacker (UnpackTmpfs): the input is
// the archive (gzipped tar, or a plain tar: the unpacker reads both).
//
// It never writes outside a scratch tmpfs. Made once, on a thread of its
// own that does every unpack: that thread unshares its mount namespace and
// its fs (cwd) from the process (libFuzzer's thread keeps the caller's),
// makes every mount of its namespace private and read-only, and mounts, for
// each input, a fresh small tmpfs (nodev, nosuid) on /tmp of that
// namespace only:
//   /tmp/outside/victim   a file the archive must not reach
//   /tmp/outside/dir/     a directory that must stay empty
//   /tmp/images/archive   the input
//   /tmp/root/            where it is unpacked, under a cap of kCap bytes
// After each unpack, whatever its outcome: outside/ is as it was (the
// victim's bytes, mode, owner and link count: a hard link to it would
// show), nothing but outside, images and root is at the top of the tmpfs
// (an entry climbing out by "..", an absolute name, or a symlink would
// land there or in outside/), and the pages the tmpfs gained (data, long
// symlinks) with the extended attributes of root/ stay within the cap. Symlinks, device nodes and FIFOs inside root/ are
// allowed: a tmpfs holds them (CRIU's /dev tmpfs holds device nodes).
// Then the tmpfs is unmounted and everything in it goes. A breach traps.
//
// Without the privileges for the namespace (not root) nothing is unpacked:
// the process exits with status 77 (ctest: skipped).
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <ftw.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "orchestrator/tmpfs.h"
#include "sys/unique_fd.h"

namespace {

using ro::UniqueFd;

constexpr uint64_t kCap = 256 * 1024;
constexpr const char* kScratch = "/tmp";
constexpr const char* kVictimText = "the victim: nothing in the archive may reach this file\n";

[[noreturn]] void Breach(const char* what) {
  std::fprintf(stderr, "tmpfs_fuzz: %s\n", what);
  __builtin_trap();
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "tmpfs_fuzz: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

bool WriteFile(int dir, const char* name, const void* data, size_t size, mode_t mode) {
  UniqueFd fd(::openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return false;
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd.get(), p, size);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

uint64_t UsedBytes() {
  struct statfs fs {};
  if (::statfs(kScratch, &fs) != 0) Die("statfs the scratch tmpfs");
  return static_cast<uint64_t>(fs.f_blocks - fs.f_bfree) * static_cast<uint64_t>(fs.f_bsize);
}

// The scratch tmpfs of one input: made, checked, unmounted.
class Scratch {
 public:
  Scratch() {
    if (::mount("scratch", kScratch, "tmpfs", MS_NODEV | MS_NOSUID, "size=16m,nr_inodes=4096,mode=0755") != 0) {
      Die("mount the scratch tmpfs");
    }
    top_ = UniqueFd(::open(kScratch, O_DIRECTORY | O_CLOEXEC));
    if (!top_) Die("open the scratch tmpfs");
    for (const char* d : {"outside", "outside/dir", "images", "root"}) {
      if (::mkdirat(top_.get(), d, 0755) != 0) Die("mkdir in the scratch tmpfs");
    }
    UniqueFd outside(::openat(top_.get(), "outside", O_DIRECTORY | O_CLOEXEC));
    if (!outside || !WriteFile(outside.get(), "victim", kVictimText, std::strlen(kVictimText), 0644)) Die("write the victim");
    if (::fstatat(outside.get(), "victim", &victim_, AT_SYMLINK_NOFOLLOW) != 0) Die("stat the victim");
  }
  ~Scratch() {
    top_.reset();
    if (::umount2(kScratch, MNT_DETACH) != 0) Die("unmount the scratch tmpfs");
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  int top() const { return top_.get(); }

  // What the archive may not have changed.
  void CheckOutside() const {
    UniqueFd dir(::openat(top_.get(), ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!dir) Die("open the scratch tmpfs");
    if (!OnlyEntries(dir.get(), {"outside", "images", "root"})) Breach("an entry appeared at the top of the scratch tmpfs");
    UniqueFd outside(::openat(top_.get(), "outside", O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!outside) Breach("outside/ is no longer a directory");
    if (!OnlyEntries(outside.get(), {"victim", "dir"})) Breach("an entry appeared in outside/");
    UniqueFd inner(::openat(outside.get(), "dir", O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!inner) Breach("outside/dir is no longer a directory");
    if (!OnlyEntries(inner.get(), {})) Breach("an entry appeared in outside/dir");
    struct stat st {};
    if (::fstatat(outside.get(), "victim", &st, AT_SYMLINK_NOFOLLOW) != 0) Breach("the victim is gone");
    if (st.st_ino != victim_.st_ino || st.st_nlink != 1 || st.st_mode != victim_.st_mode || st.st_uid != victim_.st_uid ||
        st.st_gid != victim_.st_gid || st.st_size != victim_.st_size || st.st_mtim.tv_sec != victim_.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != victim_.st_mtim.tv_nsec) {
      Breach("the victim was linked to or changed");
    }
    UniqueFd victim(::openat(outside.get(), "victim", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    char buf[128] = {};
    if (!victim || ::read(victim.get(), buf, sizeof(buf)) != static_cast<ssize_t>(std::strlen(kVictimText)) ||
        std::memcmp(buf, kVictimText, std::strlen(kVictimText)) != 0) {
      Breach("the victim's bytes changed");
    }
    // Nor inode flags (chattr) or ACLs on the victim or outside/dir.
    for (int fd : {victim.get(), inner.get()}) {
      int flags = -1;
      if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0 || flags != 0) Breach("inode flags were set outside");
      for (const char* acl : {"system.posix_acl_access", "system.posix_acl_default"}) {
        if (::fgetxattr(fd, acl, nullptr, 0) >= 0) Breach("an ACL was set outside");
      }
    }
  }

 private:
  // Whether `dir` holds exactly `names` (and . and ..).
  static bool OnlyEntries(int dir, std::initializer_list<const char*> names) {
    DIR* d = ::fdopendir(::dup(dir));
    if (d == nullptr) Die("fdopendir");
    size_t seen = 0;
    bool ok = true;
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      bool known = false;
      for (const char* n : names) known = known || std::strcmp(n, e->d_name) == 0;
      ok = ok && known;
      ++seen;
    }
    ::closedir(d);
    return ok && seen == names.size();
  }

  UniqueFd top_;
  struct stat victim_ {};
};

// The extended attributes (names and values) of everything in root/, each
// inode once: kernel memory a tmpfs's size= does not count.
std::set<ino_t>* xattr_seen = nullptr;
uint64_t xattr_total = 0;

int AddXattrs(const char* path, const struct stat* st, int, struct FTW*) {
  if (!xattr_seen->insert(st->st_ino).second) return 0;
  std::vector<char> names(65536);
  ssize_t n = ::llistxattr(path, names.data(), names.size());
  for (ssize_t at = 0; n > 0 && at < n;) {
    const char* name = names.data() + at;
    ssize_t size = ::lgetxattr(path, name, nullptr, 0);
    xattr_total += std::strlen(name) + static_cast<uint64_t>(size > 0 ? size : 0);
    at += static_cast<ssize_t>(std::strlen(name)) + 1;
  }
  return 0;
}

uint64_t XattrBytes() {
  std::set<ino_t> seen;
  xattr_seen = &seen;
  xattr_total = 0;
  // A tree deeper than nftw reaches (paths past PATH_MAX) is counted as far as it reaches.
  (void)::nftw((std::string(kScratch) + "/root").c_str(), AddXattrs, 16, FTW_PHYS | FTW_MOUNT);
  return xattr_total;
}

// One input, on the sandbox thread.
void UnpackOne(const std::string& input) {
  Scratch scratch;
  UniqueFd images(::openat(scratch.top(), "images", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!images || !WriteFile(images.get(), "archive", input.data(), input.size(), 0600)) Die("write the archive");
  UniqueFd root(::openat(scratch.top(), "root", O_DIRECTORY | O_PATH | O_CLOEXEC));
  if (!root) Die("open root/");
  uint64_t before = UsedBytes();
  ro::images::PayloadRef ref{"archive", 0, input.size()};
  (void)ro::UnpackTmpfs(root, images.get(), ref, ro::TmpfsCap{kCap, "the fuzz target"});
  uint64_t after = UsedBytes();
  scratch.CheckOutside();
  uint64_t pages = after > before ? after - before : 0;
  if (pages + XattrBytes() > kCap) Breach("the unpacked contents passed the cap");
}

// The thread that unpacks, in its own mount namespace and fs.
class Sandbox {
 public:
  static Sandbox& Get() {
    static Sandbox* sandbox = new Sandbox();  // lives as long as the process
    return *sandbox;
  }

  void Run(const std::string& input) {
    std::unique_lock lock(mu_);
    input_ = &input;
    cv_.notify_all();
    cv_.wait(lock, [&] { return input_ == nullptr; });
  }

 private:
  Sandbox() {
    // libarchive stays loaded: UnpackTmpfs's own dlopen then only counts up.
    if (::dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL) == nullptr) {
      std::fprintf(stderr, "tmpfs_fuzz: cannot load libarchive: %s\n", ::dlerror());
      std::exit(1);
    }
    std::thread([this] { Loop(); }).detach();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return ready_; });
  }

  void Enter() {
    if (::unshare(CLONE_NEWNS | CLONE_FS) != 0) {
      std::fprintf(stderr, "tmpfs_fuzz: no mount namespace of its own (%s): needs root; nothing unpacked\n",
                   std::strerror(errno));
      std::_Exit(77);
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Die("make / private");
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof(attr)) != 0) Die("make every mount read-only");
    if (::chdir("/") != 0) Die("chdir /");
  }

  void Loop() {
    Enter();
    std::unique_lock lock(mu_);
    ready_ = true;
    cv_.notify_all();
    for (;;) {
      cv_.wait(lock, [&] { return input_ != nullptr; });
      UnpackOne(*input_);
      input_ = nullptr;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  const std::string* input_ = nullptr;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  Sandbox::Get().Run(input);
  return 0;
}
