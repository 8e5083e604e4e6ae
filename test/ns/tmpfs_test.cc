// tmpfs contents under a cap: a small archive that unpacks big, a sparse
// file, a hard link carrying data, long symlinks and extended attributes
// are refused with the cap in the one line (before they are written), a tmpfs the images make unlimited is
// refused unless the caller asks, and nothing is left behind. What a
// dump packs comes back: a socket inode, POSIX ACLs (access and default)
// and inode flags (chattr +i, +a, +A, +d), seen from outside and by
// verify, which sees each of them missing from edited images.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "test/helpers/live_tree.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::test {
namespace {

std::vector<TaskSpec> OneTask() { return {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}}; }

// A tree whose /data is a tmpfs with `options` holding `tar_gz`.
ImageSet WithData(const std::string& tar_gz, const std::string& options) {
  ImageSet set = TreeImages(OneTask());
  AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                  {.id = 41, .parent = 40, .mountpoint = "/data", .options = options, .dev = 50}});
  AddTmpfsContents(set, 50, tar_gz);
  return set;
}

// What a restore says and leaves: its status and stderr, the processes,
// mounts and /dev/shm entries it left (a detached tree is killed first).
struct Outcome {
  int status = -1;
  std::string err;
  std::string left;
  off_t big_size = -1;  // /data/big in the restored tree, when it restored
  std::string seen;     // what `look` said of the restored tree's /data
};

Outcome Restore(const ImageSet& set, const std::vector<std::string>& extra = {},
                const std::function<std::string(const std::string&)>& look = nullptr) {
  Outcome o;
  std::vector<std::string> mounts = MountTable();
  std::vector<std::string> shm = DevShm();
  TempDir dir;
  if (Status s = images::WriteImageDir(dir.path(), set); !s.ok()) {
    o.err = s.error().ToString();
    return o;
  }
  std::vector<std::string> argv = {RestoreOrch(), "--images", dir.path(), "--detach"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  RunResult r = RunCommand(argv);
  o.status = r.status;
  o.err = r.err;
  if (r.status == 0) {
    pid_t root = static_cast<pid_t>(std::atoi(r.out.c_str()));
    struct stat st {};
    if (::stat(("/proc/" + std::to_string(root) + "/root/data/big").c_str(), &st) == 0) o.big_size = st.st_size;
    if (look) o.seen = look("/proc/" + std::to_string(root) + "/root/data");
    KillTree(root);
  }
  if (MountTable() != mounts) o.left += "the mount table changed\n";
  if (DevShm() != shm) o.left += "/dev/shm changed\n";
  if (int n = OtherProcesses(); n != 0) o.left += std::to_string(n) + " processes left\n";
  return o;
}

// A gzipped tar made by tar(1) in `dir` from `members`, with `flags`.
std::string Tar(const TempDir& dir, const std::vector<std::string>& flags, const std::vector<std::string>& members) {
  std::vector<std::string> argv = {"tar", "-czf", dir.File("out.tar.gz")};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {"-C", dir.path()});
  argv.insert(argv.end(), members.begin(), members.end());
  RunCommand(argv);
  return dir.Read("out.tar.gz");
}

// 24 MiB of zeros, packed: well under a megabyte.
std::string ZerosTarGz(const TempDir& src) {
  src.Write("big", std::string(24u << 20, '\0'));
  return Tar(src, {}, {"big"});
}

std::string Expect(const Outcome& o, int status, const std::string& line) {
  std::string p;
  if (o.status != status) p += "status " + std::to_string(o.status) + ", want " + std::to_string(status) + "\n";
  if (!line.empty() && o.err.find(line) == std::string::npos) p += "stderr lacks \"" + line + "\":\n" + o.err;
  if (!line.empty() && o.err.find('\n') != o.err.size() - 1) p += "more than one line:\n" + o.err;
  return p + o.left;
}

TEST(TmpfsCap, ASmallArchiveThatUnpacksBigStopsAtTheSizeOption) {
  EXPECT_EQ(InSandbox([] {
              TempDir src;
              std::string tar = ZerosTarGz(src);
              if (tar.size() > (1u << 20)) return "the archive is " + std::to_string(tar.size()) + " bytes";
              return Expect(Restore(WithData(tar, "size=8m")), 1,
                            "tmpfs-dev-50.tar.gz.img: entry big: the unpacked contents would pass 8 MiB, the cap from "
                            "size=8m of the tmpfs (--tmpfs-limit sets another)");
            }),
            "");
}

TEST(TmpfsCap, TheFlagSetsTheCapOfATmpfsWithoutSize) {
  EXPECT_EQ(InSandbox([] {
              TempDir src;
              std::string tar = ZerosTarGz(src);
              std::string p = Expect(Restore(WithData(tar, ""), {"--tmpfs-limit", "4m"}), 1,
                                     "entry big: the unpacked contents would pass 4 MiB, the cap from --tmpfs-limit");
              // The default cap (1 GiB without size=) lets it through, whole.
              Outcome ok = Restore(WithData(tar, ""));
              p += Expect(ok, 0, "");
              if (ok.big_size != (24 << 20)) p += "/data/big has " + std::to_string(ok.big_size) + " bytes\n";
              return p;
            }),
            "");
}

TEST(TmpfsCap, ASparseFileCountsWhole) {
  EXPECT_EQ(InSandbox([] {
              TempDir src;
              // 2 GiB of holes: a few hundred bytes packed.
              int fd = ::creat(src.File("big").c_str(), 0600);
              bool made = fd >= 0 && ::ftruncate(fd, 2ll << 30) == 0;
              if (fd >= 0) ::close(fd);
              if (!made) return std::string("could not make the sparse file");
              std::string tar = Tar(src, {"--sparse"}, {"big"});
              return Expect(Restore(WithData(tar, "")), 1,
                            "entry big: the unpacked contents would pass 1 GiB, the cap from the default for a tmpfs "
                            "without size=");
            }),
            "");
}

TEST(TmpfsCap, AHardLinkCarryingDataIsCharged) {
  EXPECT_EQ(InSandbox([] {
              TempDir src;
              // pax: "big" a hard link to "a" that carries 24 MiB of data.
              std::string script =
                  "import io, tarfile, sys\n"
                  "with tarfile.open(sys.argv[1], 'w:gz', format=tarfile.PAX_FORMAT) as t:\n"
                  "    a = tarfile.TarInfo('a'); a.size = 1; t.addfile(a, io.BytesIO(b'x'))\n"
                  "    b = tarfile.TarInfo('big'); b.type = tarfile.LNKTYPE; b.linkname = 'a'; b.size = 24 << 20\n"
                  "    t.addfile(b, io.BytesIO(bytes(24 << 20)))\n";
              RunResult made = RunCommand({"python3", "-c", script, src.File("out.tar.gz")});
              if (made.status != 0) return "python3: " + made.err;
              Outcome o = Restore(WithData(src.Read("out.tar.gz"), ""), {"--tmpfs-limit", "4m"});
              // Refused with the cap, or (libarchive dropping the link's
              // data) restored without it: never past the cap.
              if (o.status == 0) {
                if (o.big_size > (4 << 20)) return "the hard link brought " + std::to_string(o.big_size) + " bytes past a 4 MiB cap\n" + o.left;
                return o.left;
              }
              return Expect(o, 1, "the unpacked contents would pass 4 MiB, the cap from --tmpfs-limit");
            }),
            "");
}

// An archive made by python3's tarfile (pax) from `body`, which adds
// entries to the TarFile t.
Result<std::string> PythonTar(const TempDir& dir, const std::string& body) {
  std::string script = "import io, tarfile, sys\nwith tarfile.open(sys.argv[1], 'w:gz', format=tarfile.PAX_FORMAT) as t:\n" + body;
  RunResult made = RunCommand({"python3", "-c", script, dir.File("out.tar.gz")});
  if (made.status != 0) return Fail("python3: " + made.err);
  return dir.Read("out.tar.gz");
}

TEST(TmpfsCap, LongSymlinksAreCharged) {
  EXPECT_EQ(InSandbox([] {
              TempDir src;
              // 2000 symlinks whose targets tmpfs keeps in a page each:
              // 8000 KiB of pages, packed into some 20 KiB.
              auto tar = PythonTar(src,
                                   "    for i in range(2000):\n"
                                   "        l = tarfile.TarInfo('l%04d' % i); l.type = tarfile.SYMTYPE; l.linkname = 't' * 2000\n"
                                   "        t.addfile(l)\n");
              if (!tar.ok()) return tar.error().ToString();
              return Expect(Restore(WithData(*tar, ""), {"--tmpfs-limit", "4m"}), 1,
                            ": the unpacked contents would pass 4 MiB, the cap from --tmpfs-limit");
            }),
            "");
}

TEST(TmpfsCap, ExtendedAttributesAreCharged) {
  EXPECT_EQ(InSandbox([] {
              TempDir src;
              // 16 files with 8 trusted.* attributes of 60,000 bytes each:
              // 7.5 MiB of kernel memory that size= does not count, packed small.
              auto tar = PythonTar(src,
                                   "    for i in range(16):\n"
                                   "        x = tarfile.TarInfo('x%02d' % i)\n"
                                   "        x.pax_headers = {'SCHILY.xattr.trusted.n%d' % k: '\\0' * 60000 for k in range(8)}\n"
                                   "        t.addfile(x)\n");
              if (!tar.ok()) return tar.error().ToString();
              return Expect(Restore(WithData(*tar, ""), {"--tmpfs-limit", "4m"}), 1,
                            ": the unpacked contents would pass 4 MiB, the cap from --tmpfs-limit");
            }),
            "");
}

TEST(TmpfsCap, AnUnlimitedTmpfsOnlyWhenAsked) {
  EXPECT_EQ(InSandbox([] {
              std::string p;
              for (const char* opt : {"size=0", "nr_inodes=0", "mode=755,nr_blocks=0"}) {
                Outcome o = Restore(WithData(EmptyTarGz(), opt));
                std::string last = std::string(opt).substr(std::string(opt).find_last_of(',') + 1);
                p += Expect(o, 2, "mount 41 at /data: tmpfs option " + last +
                                      " makes it unlimited: give --allow-unlimited-tmpfs to restore it");
              }
              p += Expect(Restore(WithData(EmptyTarGz(), "size=0"), {"--allow-unlimited-tmpfs"}), 0, "");
              return p;
            }),
            "");
}

// system.posix_acl_access's value: version 2, then (tag, perm, id) entries:
// user:: rw-, user:1000: rwx, group:: r--, mask:: rwx, other:: r--.
std::string AclValue() {
  std::string v("\x02\0\0\0", 4);
  auto add = [&](uint16_t tag, uint16_t perm, uint32_t id) {
    char e[8];
    std::memcpy(e, &tag, 2);
    std::memcpy(e + 2, &perm, 2);
    std::memcpy(e + 4, &id, 4);
    v.append(e, 8);
  };
  add(0x01, 6, 0xffffffff);
  add(0x02, 7, 1000);
  add(0x04, 4, 0xffffffff);
  add(0x10, 7, 0xffffffff);
  add(0x20, 4, 0xffffffff);
  return v;
}

// The inode flags of `path` (FS_IOC_GETFLAGS), or -1.
long FlagsOf(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  int flags = -1;
  if (fd >= 0 && ::ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) flags = -1;
  if (fd >= 0) ::close(fd);
  return flags;
}

void SetFlags(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  MUST(fd >= 0 && ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
  ::close(fd);
}

std::string XattrOf(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof(buf));
  return n >= 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
}

// A socket inode at `path` (bound, then closed).
void BindAndClose(const std::string& path) {
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  MUST(s >= 0 && path.size() < sizeof(a.sun_path));
  std::memcpy(a.sun_path, path.c_str(), path.size());
  MUST(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  ::close(s);
}

// t/ a tmpfs with a socket (mode 0751, owner 1000:2000, two names), a file with an
// access ACL, a directory with a default ACL (and a file in it made
// before, without one), and files with +i, +a, +A and
// a directory with +d (the immutable one in a directory of its own); the
// root itself has +a and +d.
void BuildFidelity(const std::string& w) {
  MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  const std::string t = w + "/t";
  MUST(::mkdir(t.c_str(), 0755) == 0);
  MUST(::mount("fid", t.c_str(), "tmpfs", 0, "size=1m") == 0);
  BindAndClose(t + "/sock");
  MUST(::chown((t + "/sock").c_str(), 1000, 2000) == 0 && ::chmod((t + "/sock").c_str(), 0751) == 0);
  MUST(::link((t + "/sock").c_str(), (t + "/sock2").c_str()) == 0);
  WriteFile(t + "/aclfile", "acl");
  std::string acl = AclValue();
  MUST(::setxattr((t + "/aclfile").c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0) == 0);
  MUST(::mkdir((t + "/defacl").c_str(), 0755) == 0);
  WriteFile(t + "/defacl/before", "made before the default ACL: none of its own");
  MUST(::setxattr((t + "/defacl").c_str(), "system.posix_acl_default", acl.data(), acl.size(), 0) == 0);
  MUST(::mkdir((t + "/ro").c_str(), 0755) == 0);
  WriteFile(t + "/ro/immutable", "i");
  WriteFile(t + "/append", "a");
  WriteFile(t + "/noatime", "A");
  MUST(::mkdir((t + "/nodump").c_str(), 0755) == 0);
  SetFlags(t + "/ro/immutable", FS_IMMUTABLE_FL);
  SetFlags(t + "/append", FS_APPEND_FL);
  SetFlags(t + "/noatime", FS_NOATIME_FL);
  SetFlags(t + "/nodump", FS_NODUMP_FL);
  SetFlags(t + "/ro", FS_IMMUTABLE_FL);
  SetFlags(t, FS_APPEND_FL | FS_NODUMP_FL);
  ExecSleep();
}

// What `t` (seen through /proc/PID/root) holds of what BuildFidelity made.
std::string Look(const std::string& t) {
  std::string out;
  struct stat st {};
  if (::lstat((t + "/sock").c_str(), &st) != 0) out += "sock: missing\n";
  else if (!S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != 0751 || st.st_uid != 1000 || st.st_gid != 2000) {
    out += "sock: mode " + Str(st.st_mode) + " owner " + Str(st.st_uid) + ":" + Str(st.st_gid) + "\n";
  }
  struct stat second {};
  if (::lstat((t + "/sock2").c_str(), &second) != 0 || second.st_ino != st.st_ino || st.st_nlink != 2) out += "sock2: not a second name of sock\n";
  if (XattrOf(t + "/aclfile", "system.posix_acl_access") != AclValue()) out += "aclfile: the access ACL differs\n";
  if (::lstat((t + "/aclfile").c_str(), &st) != 0 || (st.st_mode & 0777) != 0674) out += "aclfile: mode " + Str(st.st_mode) + "\n";
  if (XattrOf(t + "/defacl", "system.posix_acl_default") != AclValue()) out += "defacl: the default ACL differs\n";
  if (XattrOf(t + "/defacl/before", "system.posix_acl_access") != "?") out += "defacl/before: inherited an ACL\n";
  const std::pair<const char*, long> flags[] = {{"/ro/immutable", FS_IMMUTABLE_FL}, {"/ro", FS_IMMUTABLE_FL},
                                                {"/append", FS_APPEND_FL}, {"/noatime", FS_NOATIME_FL},
                                                {"/nodump", FS_NODUMP_FL}, {"/aclfile", 0},
                                                {"", FS_APPEND_FL | FS_NODUMP_FL}};
  for (auto [f, want] : flags) {
    if (long got = FlagsOf(t + f); got != want) out += std::string(f) + ": flags " + Str(got) + ", want " + Str(want) + "\n";
  }
  if (::lstat((t + "/ro/immutable").c_str(), &st) != 0 || st.st_size != 1) out += "ro/immutable: not its data\n";
  return out;
}

TEST(TmpfsFidelity, SocketsAclsAndInodeFlagsComeBackAndVerifySeesThem) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string w = work.path(), t = w + "/t";
              pid_t root = StartTree(true, true, [&] { BuildFidelity(w); });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
              std::string before = Look("/proc/" + Str(root) + "/root" + t);
              RunResult d = Dump(root, work.File("images"));
              if (d.status != 0) KillTree(root);
              ::waitpid(root, nullptr, 0);
              EXPECT_OR_RETURN(before.empty(), "the tree as built: " + before);
              EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
              EXPECT_OR_RETURN(d.err.find("sock") == std::string::npos, "dump warned: " + d.err);
              pid_t restored = 0;
              if (std::string e = RestoreAndVerify(work.File("images"), restored); !e.empty()) return e;
              std::string after = Look("/proc/" + Str(restored) + "/root" + t);
              // Images whose tmpfs archive lacks the flags, the ACLs and the socket marker.
              RunResult edit = RunCommand(
                  {"sh", "-c",
                   "cd " + work.File("images") + " && f=$(ls | grep tmpfs-dev) && python3 -c '\n"
                   "import sys, tarfile\n"
                   "src = tarfile.open(sys.argv[1]); out = tarfile.open(sys.argv[1] + \".new\", \"w:gz\", format=tarfile.PAX_FORMAT)\n"
                   "for m in src.getmembers():\n"
                   "    m.pax_headers = {k: v for k, v in m.pax_headers.items() if \"fflags\" not in k and \"acl\" not in k and \"restore-orch\" not in k}\n"
                   "    out.addfile(m, src.extractfile(m) if m.isreg() else None)\n"
                   "out.close()\n"
                   "' $f && mv $f.new $f"});
              RunResult v = RunCommand({RestoreOrch(), "verify", "--images", work.File("images"), "--pid", Str(restored)});
              KillTree(restored);
              EXPECT_OR_RETURN(after.empty(), "restored: " + after);
              EXPECT_OR_RETURN(edit.status == 0, "editing the images: " + edit.err);
              std::string p;
              // Each difference is a line "mount T: /path: what, images say what".
              for (auto [what, says] : std::vector<std::pair<std::string, std::string>>{
                       {"/sock: type 0140000", "images say 0100000"},
                       {"/aclfile: ACL access:user::rw- access:group::r-- access:other::r-- access:user:1000:rwx access:mask::rwx",
                        "images say none"},
                       {"/defacl: ACL default:user::rw- default:user:1000:rwx default:group::r-- default:mask::rwx default:other::r--",
                        "images say none"},
                       {"/ro/immutable: inode flags i", "images say none"},
                       {"/ro: inode flags i", "images say none"},
                       {"/append: inode flags a", "images say none"},
                       {"/noatime: inode flags A", "images say none"},
                       {"/nodump: inode flags d", "images say none"},
                       {"/: inode flags ad", "images say none"}}) {
                bool found = false;
                std::istringstream lines(v.out);
                for (std::string l; std::getline(lines, l);) {
                  size_t at = l.find(": " + what);
                  found |= l.rfind("mount " + t + ":", 0) == 0 && at != std::string::npos && l.size() >= says.size() &&
                           l.compare(l.size() - says.size(), says.size(), says) == 0;
                }
                if (!found) p += "verify lacks \"" + what + "..." + says + "\"\n";
              }
              if (v.status != 1) p += "verify exit " + Str(v.status) + "\n";
              return p.empty() ? p : p + v.out + v.err;
            }),
            "");
}

std::string CorpusFile(const std::string& name) { return ReadFile(std::string(RO_SOURCE_DIR) + "/test/fuzz/corpus-tmpfs_fuzz/" + name); }

// Archives made by test/fuzz/make_tmpfs_seeds.py: what a dump writes comes
// back; a socket marker that would climb out, pass through a symlink, take
// a name already there or carry data is refused with one line.
TEST(TmpfsFidelity, CraftedArchivesUnpackOrAreRefused) {
  EXPECT_EQ(InSandbox([] {
              std::string p;
              Outcome ok = Restore(WithData(CorpusFile("socket-acl-flags.tar.gz"), ""), {}, [](const std::string& d) {
                std::string out;
                struct stat st {};
                if (::lstat((d + "/sock").c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != 0751) out += "sock\n";
                if (XattrOf(d + "/acl", "system.posix_acl_access") == "?") out += "acl: no access ACL\n";
                if (XattrOf(d + "/d", "system.posix_acl_default") == "?") out += "d: no default ACL\n";
                if (FlagsOf(d) != (FS_APPEND_FL | FS_NODUMP_FL)) out += "/: flags " + Str(FlagsOf(d)) + "\n";
                if (FlagsOf(d + "/d") != FS_IMMUTABLE_FL) out += "d: flags " + Str(FlagsOf(d + "/d")) + "\n";
                if (FlagsOf(d + "/d/i") != FS_IMMUTABLE_FL) out += "d/i: flags " + Str(FlagsOf(d + "/d/i")) + "\n";
                if (FlagsOf(d + "/a") != (FS_APPEND_FL | FS_NOATIME_FL)) out += "a: flags " + Str(FlagsOf(d + "/a")) + "\n";
                if (::lstat((d + "/h").c_str(), &st) != 0 || st.st_nlink != 2) out += "h: not a second name of d/i\n";
                return out;
              });
              p += Expect(ok, 0, "") + ok.seen;
              for (auto [seed, line] : std::vector<std::pair<std::string, std::string>>{
                       {"socket-escape.tar", "entry ../outside/dir/s: a socket cannot be made: openat2(../outside/dir, beneath, no symlinks): "},
                       {"socket-replaces.tar", "entry x: a socket cannot be made: mknodat(x, S_IFSOCK): "},
                       {"socket-replaces-symlink.tar", "entry v: a socket cannot be made: mknodat(v, S_IFSOCK): "},
                       {"socket-with-data.tar", "entry s: a socket marker on what is no empty file"},
                       {"socket-marker-odd.tar", "entry s: user.restore-orch.type is not \"socket\""}}) {
                p += Expect(Restore(WithData(CorpusFile(seed), "")), 1, line);
              }
              return p;
            }),
            "");
}

TEST(TmpfsFidelity, DumpRefusesWhatItCannotBringBack) {
  // A file carrying the socket marker itself; a socket with an extended attribute.
  EXPECT_EQ(InSandbox([] {
              return RefusedMounts(
                  [](const std::string& w) {
                    MUST(::mount("m", w.c_str(), "tmpfs", 0, "size=64k") == 0);
                    WriteFile(w + "/f", "x");
                    MUST(::setxattr((w + "/f").c_str(), "user.restore-orch.type", "socket", 6, 0) == 0);
                  },
                  "./f carries the extended attribute user.restore-orch.type", false);
            }),
            "");
  EXPECT_EQ(InSandbox([] {
              return RefusedMounts(
                  [](const std::string& w) {
                    MUST(::mount("m", w.c_str(), "tmpfs", 0, "size=64k") == 0);
                    BindAndClose(w + "/s");
                    MUST(::lsetxattr((w + "/s").c_str(), "trusted.x", "v", 1, 0) == 0);
                  },
                  "./s: a socket with extended attributes or an ACL", false);
            }),
            "");
}

}  // namespace
}  // namespace ro::test
