// The upstream-CRIU fixtures (test/fixtures/criu-images) made ready for a
// restore inside a sandbox: a writable copy of img/ and the tree's root
// unpacked into a fresh tmpfs, as the fixtures' README says.
#pragma once

#include <string>
#include <vector>

#include "test/helpers/test_util.h"

namespace ro::test {

// The directory of fixture `name` ("memory-counter").
std::string FixtureDir(const std::string& name);

// In `work`: img/ (a copy of the fixture's images) and R/ (a tmpfs, in the
// caller's mount namespace, holding root.tar.gz unpacked). Call it from a
// sandbox. Returns "" or what failed.
std::string PrepareFixture(const std::string& name, const TempDir& work);

// The fixtures keep the hard RLIMIT_NPROC and RLIMIT_SIGPENDING of the
// machine that dumped them, which the kernel sizes from its memory
// (kernel/fork.c, set_max_threads): a few above this machine's, a restore
// here without CAP_SYS_RESOURCE is refused (as it must be). In the image
// directory `img_dir`, each core-N.img's limits of those two resources
// above restore-orch's own hard limit are lowered to it. "" or what failed.
std::string FitRlimitsToThisMachine(const std::string& img_dir);

// restore-orch's arguments to restore a prepared fixture (without -d).
std::vector<std::string> FixtureRestoreArgs(const TempDir& work);

}  // namespace ro::test
