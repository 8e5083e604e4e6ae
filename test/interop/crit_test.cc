// Interop with CRIU's own image tool: what we write, crit reads field for
// field; what crit writes, we read field for field.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "images/image_file.h"
#include "images/json.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

using google::protobuf::util::MessageDifferencer;
using namespace ro::images;

bool HaveCrit() { return RunCommand({"crit", "--help"}).status == 0; }

void ExpectSame(const ImageFile& want, const ImageFile& got, const std::string& what) {
  ASSERT_EQ(want.kind, got.kind) << what;
  ASSERT_EQ(want.entries.size(), got.entries.size()) << what;
  for (size_t i = 0; i < want.entries.size(); ++i) {
    std::string diff;
    MessageDifferencer d;
    d.ReportDifferencesToString(&diff);
    EXPECT_TRUE(d.Compare(*want.entries[i].message, *got.entries[i].message)) << what << " entry " << i << ":\n" << diff;
    EXPECT_EQ(want.entries[i].payload, got.entries[i].payload) << what << " entry " << i;
  }
}

class Crit : public ::testing::Test {
 protected:
  void SetUp() override {
    // CI installs criu (scripts/setup.sh); a missing crit is a failure there.
    ASSERT_TRUE(HaveCrit()) << "crit not found: run scripts/setup.sh (Debian package criu)";
  }
};

TEST_F(Crit, DecodesEveryFileWeWrite) {
  ImageSet set = DemoImages();
  TempDir dir;
  ASSERT_TRUE(WriteImageDir(dir.path(), set).ok());
  int checked = 0;
  for (const auto& [name, file] : set) {
    // crit knows neither restore-orch's own kinds nor raw tarballs.
    if (file.kind->ours || file.kind->layout == Layout::kRaw) continue;
    RunResult r = RunCommand({"crit", "decode", "-i", dir.File(name)});
    ASSERT_EQ(r.status, 0) << name << ": " << r.err;
    auto back = ImageFromJson(r.out, Limits{});
    ASSERT_TRUE(back.ok()) << name << ": " << back.error().ToString() << "\n" << r.out;
    ExpectSame(file, *back, "crit decode " + name);
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST_F(Crit, WeDecodeEveryFileCritEncodes) {
  ImageSet set = DemoImages();
  TempDir dir;
  int checked = 0;
  for (const auto& [name, file] : set) {
    if (file.kind->ours || file.kind->layout == Layout::kRaw) continue;
    auto json = ImageToJson(file, false);
    ASSERT_TRUE(json.ok());
    dir.Write(name + ".json", *json);
    RunResult r = RunCommand({"crit", "encode", "-i", dir.File(name + ".json"), "-o", dir.File(name)});
    ASSERT_EQ(r.status, 0) << name << ": " << r.err;
    auto parsed = ParseImage(dir.Read(name), file.kind, Limits{});
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.error().ToString();
    ExpectSame(file, *parsed, "crit encode " + name);
    // Same messages, same framing: the bytes agree with our writer's.
    auto ours = SerializeImage(file);
    ASSERT_TRUE(ours.ok());
    EXPECT_EQ(*ours, dir.Read(name)) << name << " differs byte-wise from crit's encoding";
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST_F(Crit, ShowsTheProcessTreeWeWrite) {
  TempDir dir;
  ASSERT_TRUE(WriteImageDir(dir.path(), DemoImages()).ok());
  RunResult r = RunCommand({"crit", "x", dir.path(), "ps"});
  ASSERT_EQ(r.status, 0) << r.err;
  // PID PGID SID COMM, children indented under their parents.
  for (const char* row : {"1      1      1   init", "2      2      2       automount", "4      3      1           reader",
                          "5      1      1       exited"}) {
    EXPECT_NE(r.out.find(row), std::string::npos) << "missing row '" << row << "' in:\n" << r.out;
  }
}

TEST_F(Crit, OurDecodeOfACritFileMatchesCritsOwn) {
  // A file crit writes from its own JSON example decodes to the same JSON.
  TempDir dir;
  dir.Write("a.json", R"({"magic":"AUTOFS","entries":[{"fd":5,"pgrp":42,"timeout":300,"minproto":5,"maxproto":5,"mode":1,"read_fd":4}]})");
  ASSERT_EQ(RunCommand({"crit", "encode", "-i", dir.File("a.json"), "-o", dir.File("autofs-1.img")}).status, 0);
  RunResult ours = RunCommand({RestoreOrch(), "image", "decode", dir.File("autofs-1.img")});
  ASSERT_EQ(ours.status, 0) << ours.err;
  EXPECT_EQ(ours.out, "{\"magic\":\"AUTOFS\",\"entries\":[{\"fd\":5,\"pgrp\":42,\"timeout\":300,\"minproto\":5,\"maxproto\":5,\"mode\":1,\"read_fd\":4}]}\n");
}

}  // namespace
}  // namespace ro::test
