// The command line as a CRIU user meets it, through the real binary: each
// command takes only its own options, values are checked in words, CRIU's
// spellings work, --dry-run checks what a restore checks, verify names a
// pid that is no tree's root, exit statuses are each command's own.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "images/image_dir.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

RunResult Orch(std::vector<std::string> args) {
  args.insert(args.begin(), RestoreOrch());
  return RunCommand(args);
}

// The demo images with the externals a restore of them must be given.
const std::vector<std::string> kDemoExternals = {"--external", "dev=/dev",   "--external", "usr=/usr", "--external",
                                                 "lib=/usr/lib", "--external", "lib64=/usr/lib64", "--external", "srv=/tmp"};

std::vector<std::string> With(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct UsageCase {
  std::vector<std::string> args;  // DIR stands for a fresh directory
  std::string message;            // in the first line
  std::string help;               // the command named in the second
};

TEST(Cli, EachCommandTakesOnlyItsOwnOptions) {
  const UsageCase cases[] = {
      {{"dump", "-t", "1", "-D", "DIR/images", "--external", "a=b"}, "--external is an option of restore, not of dump", "restore-orch dump"},
      {{"dump", "-t", "1", "-D", "DIR/images", "--root", "/"}, "--root is an option of restore, not of dump", "restore-orch dump"},
      {{"dump", "-t", "1", "-D", "DIR/images", "-d"}, "-d is an option of restore, not of dump", "restore-orch dump"},
      {{"check", "--timeout", "5"}, "--timeout is an option of restore, not of check", "restore-orch check"},
      {{"verify", "-D", "DIR", "--pid", "1", "--detach"}, "--detach is an option of restore, not of verify", "restore-orch verify"},
      {{"image", "show", "DIR", "--dry-run"}, "--dry-run is an option of restore, not of image show", "restore-orch image show"},
      {{"image", "decode", "/etc/hostname", "--root", "/"}, "--root is an option of restore, not of image decode",
       "restore-orch image decode"},
      {{"--timeout", "5", "dump", "-t", "1", "-D", "DIR/images"}, "--timeout is restore's option: it cannot come before 'dump'",
       "restore-orch dump"},
      {{"--dry-run", "check"}, "--dry-run is restore's option: it cannot come before 'check'", "restore-orch check"},
      {{"dump", "-t", "1", "-D", "DIR/images", "--bogus"}, "dump has no option --bogus", "restore-orch dump"},
      {{"frobnicate"}, "'frobnicate' is not a command (restore, dump, check, verify, image) or an option", "restore-orch"},
      {{"image"}, "image needs a command: decode, encode or show", "restore-orch image"},
      {{"dump", "-D", "DIR/images"}, "--tree is required", "restore-orch dump"},
      {{"check", "--shell-job"}, "--shell-job is an option of restore, not of check", "restore-orch check"},
      {{"verify", "-D", "DIR", "--pid", "1", "-j"}, "-j is an option of restore, not of verify", "restore-orch verify"},
      {{}, "--images DIR is required (or name a command: restore, dump, check, verify, image)", "restore-orch"},
  };
  for (const UsageCase& c : cases) {
    TempDir dir;
    std::vector<std::string> args;
    std::string shown;
    for (std::string a : c.args) {
      if (a.starts_with("DIR")) a = dir.path() + a.substr(3);
      args.push_back(a);
      shown += " " + a;
    }
    RunResult r = Orch(args);
    EXPECT_EQ(r.status, 64) << shown << "\n" << r.err;
    std::vector<std::string> lines = Lines(r.err);
    ASSERT_EQ(lines.size(), 2u) << shown << "\n" << r.err;
    EXPECT_EQ(lines[0].rfind("restore-orch: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(c.message), std::string::npos) << shown << "\n" << r.err;
    EXPECT_EQ(lines[1], "run '" + c.help + " --help' for usage") << shown;
    EXPECT_EQ(r.out, "") << shown;
    EXPECT_NE(::access(dir.File("images").c_str(), F_OK), 0) << shown << ": made the image directory";
  }
}

TEST(Cli, ValuesAreCheckedInWords) {
  TempDir dir;
  dir.Write("script", "#!/bin/sh\n");
  ::chmod(dir.File("script").c_str(), 0644);
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--images", dir.path(), "--timeout", "abc"},
       "--timeout: expected a number of seconds greater than 0 and at most 1000000 (like 30 or 0.5), got 'abc'"},
      {{"--images", dir.path(), "--timeout", "0"}, "--timeout: expected a number of seconds greater than 0"},
      {{"--images", dir.path(), "--timeout", "1e999"}, "got '1e999'"},
      {{"--images", dir.path(), "--timeout", "nan"}, "got 'nan'"},
      {{"restore", "--images", dir.path(), "--kill-after", "soon"}, "--kill-after: expected a number of seconds"},
      {{"dump", "-t", "abc", "-D", dir.File("i")}, "--tree: expected a process id (a number from 1 to 4194303), got 'abc'"},
      {{"dump", "-t", "0", "-D", dir.File("i")}, "--tree: expected a process id (a number from 1 to 4194303), got '0'"},
      {{"dump", "-t", "1", "-D", dir.File("i"), "--timeout", "x"}, "--freeze-timeout: expected a number of seconds"},
      {{"verify", "-D", dir.path(), "--pid", "99999999"}, "--pid: expected a process id"},
      {{"--images", dir.path(), "--root", dir.File("nothing")}, "--root: no such directory: '" + dir.File("nothing") + "'"},
      {{"--images", dir.path(), "--action-script", dir.File("script")}, "--action-script: '" + dir.File("script") + "' is not an executable file"},
      {{"--images", dir.path(), "--autofs-orphans", "maybe"}, "--autofs-orphans: expected one of fail, catatonic, got 'maybe'"},
      {{"check", "--log-level", "7"}, "--log-level: expected a level from 0 to 4 (as CRIU's -v0 .. -v4), got '7'"},
      {{"check", "-v9"}, "--log-level: expected a level from 0 to 4"},
  };
  for (const auto& [args, message] : cases) {
    RunResult r = Orch(args);
    EXPECT_EQ(r.status, 64) << args[1] << "\n" << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    for (const char* internal : {"1.79769", "DBL_MAX", "Could not convert", "Error", "CLI", "::", "2.22507"}) {
      EXPECT_EQ(r.err.find(internal), std::string::npos) << "parser internals in: " << r.err;
    }
    EXPECT_EQ(Lines(r.err).size(), 2u) << r.err;
  }
}

// The one contract: an image (a directory, a file, the JSON of one) that is
// missing or cannot be read is exit 2, as an invalid one, with one line
// naming it; never bad usage (64).
TEST(Cli, MissingImagesAreExitTwoForEveryCommand) {
  TempDir dir;
  const std::string missing = dir.File("nothing");
  dir.Write("file", "x");
  const std::vector<std::vector<std::string>> cases = {
      {"--images", missing},
      {"--images", missing, "--dry-run"},
      {"restore", "-D", missing},
      {"--images", dir.File("file"), "--dry-run"},
      {"verify", "-D", missing, "--pid", "1"},
      {"image", "show", missing},
      {"image", "show", dir.File("file")},
      {"image", "decode", missing + ".img"},
      {"image", "decode", "-i", missing + ".img", "-o", dir.File("out")},
      {"image", "decode", dir.path()},
      {"image", "encode", "-i", missing + ".json", "-o", dir.File("out")},
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const std::string& a : args) shown += " " + a;
    RunResult r = Orch(args);
    EXPECT_EQ(r.status, 2) << shown << "\n" << r.err;
    EXPECT_EQ(Lines(r.err).size(), 1u) << shown << "\n" << r.err;
    // The line names the image it could not read (the first path argument).
    std::string image;
    for (const std::string& a : args) {
      if (image.empty() && a.starts_with(dir.path())) image = a;
    }
    EXPECT_NE(r.err.find(image), std::string::npos) << shown << "\n" << r.err;
    EXPECT_EQ(r.out, "") << shown;
    EXPECT_NE(::access(dir.File("out").c_str(), F_OK), 0) << shown << ": wrote its output";
  }
}

class DemoDir : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(images::WriteImageDir(dir_.path(), DemoImages()).ok()); }
  TempDir dir_;
  TempDir work_;
};

// CRIU's spellings of restore's options, on a dry run.
TEST_F(DemoDir, CriuSpellingsOfRestore) {
  RO_SKIP_WITHOUT_AUTOFS();
  if (::geteuid() != 0) GTEST_SKIP() << "a dry run opens /dev/autofs as a restore does: needs root";
  std::string log = work_.File("restore.log");
  RunResult r = Orch({"restore", "-D", dir_.path(), "--dry-run", "-v4", "-o", log, "--external", "mnt[dev]:/dev",
                     "--external", "mnt[usr]:/usr", "--ext-mount-map", "lib:/usr/lib", "--ext-mount-map", "lib64:/usr/lib64",
                     "--external", "srv=/tmp", "-d", "--restore-detached", "--pidfile", work_.File("pid")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("4. tasks (fork order):"), std::string::npos) << r.out;
  EXPECT_NE(work_.Read("restore.log").find("plan: "), std::string::npos) << "-v4 -o FILE logs at debug level to FILE";
  EXPECT_NE(::access(work_.File("pid").c_str(), F_OK), 0) << "a dry run wrote the pidfile";
  // --images-dir, and -v3 before the command as CRIU allows.
  r = Orch(With({"-v3", "restore", "--images-dir", dir_.path(), "--dry-run"}, kDemoExternals));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("plan: "), std::string::npos) << "-v3 logs at info level on stderr:\n" << r.err;
}

TEST_F(DemoDir, DryRunChecksWhatARestoreChecks) {
  if (::geteuid() != 0) GTEST_SKIP() << "a dry run opens /dev/autofs as a restore does: needs root";
  struct Case {
    std::vector<std::string> extra;
    int status;
    std::string message;
  };
  std::vector<std::string> externals = kDemoExternals;
  const Case cases[] = {
      {{"--external", "dev"}, 64, "--external dev: expected KEY=PATH (or mnt[KEY]:PATH)"},
      {{"--external", "mnt[dev]"}, 64, "--external mnt[dev]: expected mnt[KEY]:PATH"},
      {{}, 2, "give --external dev=PATH, or --ext-mount-map auto"},
      {With({"--external", "dev=" + work_.File("none")}, std::vector<std::string>(externals.begin() + 2, externals.end())), 1,
       work_.File("none")},
      {With(externals, {"--pidfile", work_.File("no/such/dir/pid")}), 1, "--pidfile " + work_.File("no/such/dir/pid")},
      {With(externals, {"--pidfile", work_.path()}), 1, "is a directory"},
  };
  for (const Case& c : cases) {
    RunResult r = Orch(With({"--images", dir_.path(), "--dry-run"}, c.extra));
    EXPECT_EQ(r.status, c.status) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << "a refused dry run prints no plan";
  }
}

TEST_F(DemoDir, VerifyNamesAPidThatIsNoTreeRoot) {
  RunResult r = Orch({"verify", "-D", dir_.path(), "--pid", "4194303"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "restore-orch: verify: no process has pid 4194303\n");
  EXPECT_EQ(r.out, "");
  // This test's own process: alive, but no tree of these images (their root is pid 1 of its own namespace).
  r = Orch({"verify", "-D", dir_.path(), "-t", std::to_string(::getpid())});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("restore-orch: verify: pid " + std::to_string(::getpid()) + " is not the root task of a tree of these images"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
}

// image decode/encode -o: a new or regular file is replaced whole (via
// FILE.tmp and a rename); anything else is written through, as crit does,
// and stays what it was: a device (/dev/null, /dev/full), a FIFO, a
// symlink (/dev/stdout -> /proc/self/fd/1) and what it points at. The
// devices are nodes made here, never the host's own.
TEST(Cli, ImageOutputWritesThroughWhatIsNotARegularFile) {
  TempDir images, work;
  ASSERT_TRUE(images::WriteImageDir(images.path(), DemoImages()).ok());
  const std::string image = images.File("pstree.img");
  RunResult plain = Orch({"image", "decode", image});
  ASSERT_EQ(plain.status, 0) << plain.err;
  const std::string json = plain.out;
  work.Write("in.json", json);
  const std::string bytes = images.Read("pstree.img");
  auto mode = [](const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & S_IFMT : 0;
  };
  // Each command writes `want` to OUT.
  struct Writer {
    const char* name;
    std::vector<std::string> args;  // OUT stands for the output path
    std::string want;
  };
  const Writer writers[] = {{"decode", {"image", "decode", image, "-o", "OUT"}, json},
                            {"encode", {"image", "encode", "-i", work.File("in.json"), "-o", "OUT"}, bytes}};
  auto run = [&](const Writer& w, const std::string& out) {
    std::vector<std::string> args;
    for (const std::string& a : w.args) args.push_back(a == "OUT" ? out : a);
    return Orch(args);
  };
  for (const Writer& w : writers) {
    SCOPED_TRACE(w.name);
    // A new file, and a regular one replaced; a PATH.tmp planted as a
    // symlink is not followed.
    std::string fresh = work.File(std::string(w.name) + ".new");
    RunResult r = run(w, fresh);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(work.Read(std::string(w.name) + ".new"), w.want);
    work.Write("victim", "victim");
    ASSERT_EQ(::symlink(work.File("victim").c_str(), (fresh + ".tmp").c_str()), 0);
    r = run(w, fresh);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(work.Read(std::string(w.name) + ".new"), w.want);
    EXPECT_EQ(work.Read("victim"), "victim");
    EXPECT_NE(::access((fresh + ".tmp").c_str(), F_OK), 0) << "FILE.tmp left behind";
    // /dev/stdout: a symlink to /proc/self/fd/1 (here, restore-orch's pipe to the test).
    std::string stdout_link = work.File(std::string(w.name) + ".stdout");
    ASSERT_EQ(::symlink("/proc/self/fd/1", stdout_link.c_str()), 0);
    r = run(w, stdout_link);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, w.want);
    EXPECT_EQ(mode(stdout_link), static_cast<mode_t>(S_IFLNK)) << "the symlink was replaced";
    // A symlink to a regular file: the file gets the output, the link stays.
    std::string target = work.File(std::string(w.name) + ".target");
    std::string link = work.File(std::string(w.name) + ".link");
    work.Write(std::string(w.name) + ".target", "old");
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
    r = run(w, link);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(mode(link), static_cast<mode_t>(S_IFLNK));
    EXPECT_EQ(work.Read(std::string(w.name) + ".target"), w.want);
    // A FIFO: its reader gets the output, the FIFO stays.
    std::string fifo = work.File(std::string(w.name) + ".fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // The reader holds the FIFO open (non-blocking, so a restore-orch that
    // never opens it hangs nobody) and reads until the writer has gone.
    std::string got;
    std::atomic<bool> done{false};
    int rfd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(rfd, 0);
    std::thread reader([&] {
      char buf[4096];
      for (;;) {
        pollfd p{rfd, POLLIN, 0};
        ::poll(&p, 1, 50);
        ssize_t n = ::read(rfd, buf, sizeof(buf));
        if (n > 0) {
          got.append(buf, static_cast<size_t>(n));
          continue;
        }
        if ((p.revents & POLLHUP) || done) break;
      }
    });
    r = run(w, fifo);
    done = true;
    reader.join();
    ::close(rfd);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(got, w.want);
    EXPECT_EQ(mode(fifo), static_cast<mode_t>(S_IFIFO)) << "the FIFO was replaced";
    if (::geteuid() != 0) continue;  // device nodes need CAP_MKNOD
    // Copies of /dev/null (1:3) and /dev/full (1:7).
    std::string null = work.File(std::string(w.name) + ".null"), full = work.File(std::string(w.name) + ".full");
    ASSERT_EQ(::mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    ASSERT_EQ(::mknod(full.c_str(), S_IFCHR | 0666, makedev(1, 7)), 0);
    r = run(w, null);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(mode(null), static_cast<mode_t>(S_IFCHR)) << "the device was replaced";
    r = run(w, full);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
    EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
    EXPECT_EQ(mode(full), static_cast<mode_t>(S_IFCHR)) << "the device was replaced";
    EXPECT_NE(::access((full + ".tmp").c_str(), F_OK), 0);
  }
}

TEST(Cli, HelpOfEachCommandGivesItsExitStatuses) {
  const std::pair<std::vector<std::string>, std::vector<std::string>> cases[] = {
      {{"--help"}, {"  0   restored", "  N   without --detach", "  1   the restore failed", "  2   the image directory is missing", "  64  bad usage"}},
      {{"restore", "--help"}, {"  0   restored", "  1   the restore failed", "  2   the image directory", "  64  bad usage"}},
      {{"dump", "--help"}, {"  0   the images are written", "  1   a failure", "  3   refused", "  64  bad usage", "  75  try again"}},
      {{"check", "--help"}, {"  0   every feature", "  1   a feature is missing", "  64  bad usage"}},
      {{"verify", "--help"}, {"  0   the tree matches", "  1   differences", "  2   the image directory is missing", "  64  bad usage"}},
      {{"image", "decode", "--help"}, {"  0   done", "  2   the input", "  64  bad usage"}},
  };
  for (const auto& [args, codes] : cases) {
    RunResult r = Orch(args);
    EXPECT_EQ(r.status, 0) << args[0];
    EXPECT_NE(r.out.find("\nExit status:\n"), std::string::npos) << r.out;
    for (const std::string& c : codes) EXPECT_NE(r.out.find("\n" + c), std::string::npos) << args[0] << ": " << c << "\n" << r.out;
  }
}

TEST(Cli, VersionAndFeatureNames) {
  RunResult r = Orch({"--version"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, std::string("restore-orch ") + RESTORE_ORCH_VERSION + "\n");
  r = Orch({"check", "--feature", "list"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("clone3-set-tid clone3_set_tid\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("move-mount-set-group move_mount_set_group\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("autofs-pipe-ino autofs\n"), std::string::npos) << r.out;
  r = Orch({"check", "--feature", "tcp_established"});
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("restore-orch: check: unknown feature 'tcp_established'"), std::string::npos) << r.err;
}

TEST(Cli, CheckByCriusFeatureNamesAndAsJson) {
  RO_SKIP_WITHOUT_AUTOFS();
  if (::geteuid() != 0) GTEST_SKIP() << "the probe makes namespaces: needs root";
  RunResult r = Orch({"check", "--feature", "clone3_set_tid", "--feature", "autofs"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0].rfind("clone3-set-tid", 0), 0u) << r.out;
  EXPECT_EQ(lines[1].rfind("autofs-pipe-ino", 0), 0u) << r.out;
  r = Orch({"check", "--all", "--json"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["ok"], true);
  std::set<std::string> names;
  for (const auto& f : j["features"]) {
    names.insert(f["name"].get<std::string>());
    EXPECT_TRUE(f["ok"].get<bool>()) << f.dump();
    if (f["name"] == "move-mount-set-group") {
      EXPECT_EQ(f["criu_name"], "move_mount_set_group");
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"clone3-set-tid", "pid-namespace", "mount-namespace", "move-mount-set-group",
                                          "autofs-pipe-ino", "dev-autofs", "ptrace-seize-interrupt", "prctl-mm-map", "rseq",
                                          "pagemap-scan", "madv-populate-write"}));
  for (const auto& f : j["features"]) {
    bool optional = f["name"] == "pagemap-scan" || f["name"] == "madv-populate-write";
    EXPECT_EQ(f["required"], !optional) << f.dump();
  }
}

}  // namespace
}  // namespace ro::test
