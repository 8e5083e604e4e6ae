// pipe-owners.img in the plan: each pipe's owner reaches the plan, and an
// entry for no pipe, a second one, or an id of -1 is refused naming it.
#include <gtest/gtest.h>
#include <fcntl.h>

#include <array>
#include <map>

#include <string>

#include "images/plan.h"
#include "images/proto/owners.pb.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::images {
namespace {

// Entries {pipe, uid, gid, mode}; mode 0: none in the entry.
test::ImageSet WithOwners(const std::vector<std::array<uint32_t, 4>>& owners) {
  test::ImageSet set = test::TreeImages({{.pid = 1, .pgid = 1, .sid = 1, .fds = {{.fd = 3, .file = 1}, {.fd = 4, .file = 2}}}}, false,
                                        {{.kind = test::FileSpec::kPipe, .id = 1, .pipe_id = 77, .flags = O_RDONLY},
                                         {.kind = test::FileSpec::kPipe, .id = 2, .pipe_id = 77, .flags = O_WRONLY}});
  ImageFile f;
  f.kind = &PipeOwnersKind();
  for (const auto& [pipe, uid, gid, mode] : owners) {
    auto e = std::make_unique<img::pipe_owner_entry>();
    e->set_pipe_id(pipe);
    e->set_uid(uid);
    e->set_gid(gid);
    if (mode != 0) e->set_mode(mode);
    f.entries.push_back(Entry{std::move(e), {}});
  }
  set.emplace("pipe-owners.img", std::move(f));
  return set;
}

std::string Errors(const test::ImageSet& set) {
  PlanOutcome out = BuildPlan(test::ToImageDir(set), {});
  std::string all;
  for (const Error& e : out.errors) all += e.ToString() + "\n";
  return out.plan ? "planned" : all;
}

TEST(PipeOwnersPlan, EachPipesOwnerAndModeReachThePlan) {
  PlanOutcome out = BuildPlan(test::ToImageDir(WithOwners({{77, 1000, 1001, 0}})), {});
  ASSERT_TRUE(out.plan.has_value()) << Errors(WithOwners({{77, 1000, 1001, 0}}));
  EXPECT_EQ(out.plan->pipe_owners, (std::map<uint32_t, PipeOwner>{{77, {1000, 1001, 0600}}}));
  EXPECT_TRUE(out.plan->pipe_owners_known);
  out = BuildPlan(test::ToImageDir(WithOwners({{77, 0, 0, 04640}})), {});
  ASSERT_TRUE(out.plan.has_value());
  EXPECT_EQ(out.plan->pipe_owners, (std::map<uint32_t, PipeOwner>{{77, {0, 0, 04640}}}));
  // Without the file (CRIU's dumps) nothing is known of any pipe's owner.
  test::ImageSet criu = WithOwners({});
  criu.erase("pipe-owners.img");
  out = BuildPlan(test::ToImageDir(criu), {});
  ASSERT_TRUE(out.plan.has_value());
  EXPECT_FALSE(out.plan->pipe_owners_known);
}

TEST(PipeOwnersPlan, AnEntryForNoPipeASecondOneMinusOneOrAFileTypeIsRefused) {
  EXPECT_NE(Errors(WithOwners({{78, 1000, 1001, 0}})).find("pipe-owners.img: entry 0: pipe 78 is no pipe of files.img"), std::string::npos);
  EXPECT_NE(Errors(WithOwners({{77, 1, 1, 0}, {77, 2, 2, 0}})).find("pipe-owners.img: entry 1: second owner of pipe 77"), std::string::npos);
  EXPECT_NE(Errors(WithOwners({{77, UINT32_MAX, 0, 0}})).find("pipe-owners.img: entry 0: pipe 77 has owner 4294967295:0: -1 is no id"),
            std::string::npos);
  EXPECT_NE(Errors(WithOwners({{77, 0, 0, 010600}})).find("pipe-owners.img: entry 0: pipe 77 has mode 010600: more than permission bits (07777)"),
            std::string::npos)
      << Errors(WithOwners({{77, 0, 0, 010600}}));
}

}  // namespace
}  // namespace ro::images
