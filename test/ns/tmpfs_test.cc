// tmpfs contents under a cap: a small archive that unpacks big, a sparse
// file, a hard link carrying data, long symlinks and extended attributes
// are refused with the cap in the one line (before they are written), a tmpfs the images make unlimited is
// refused unless the caller asks, and nothing is left behind.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

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
};

Outcome Restore(const ImageSet& set, const std::vector<std::string>& extra = {}) {
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

}  // namespace
}  // namespace ro::test
