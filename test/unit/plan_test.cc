// The plan builder on valid image sets: order, helpers, sharing, AutoFS.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "images/plan.h"
#include "images/proto/autofs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/inventory.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/ipc_sysctls.h"
#include "images/payloads.h"
#include "images/proto/ipc-msg.pb.h"
#include "images/proto/ipc-sem.pb.h"
#include "images/proto/ipc-shm.pb.h"
#include "images/proto/ipc-var.pb.h"
#include "images/proto/posix-mqueue.pb.h"
#include "images/proto/utsns.pb.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::images {
namespace {

RestorePlan MustPlan(const test::ImageSet& set) {
  PlanOptions options;
  options.ext_mount_map_auto = true;  // the demo set's externals
  PlanOutcome out = BuildPlan(test::ToImageDir(set), options);
  std::string errors;
  for (const Error& e : out.errors) errors += e.ToString() + "\n";
  EXPECT_TRUE(out.plan.has_value()) << errors;
  return out.plan ? std::move(*out.plan) : RestorePlan{};
}

std::vector<pid_t> Pids(const RestorePlan& plan) {
  std::vector<pid_t> pids;
  for (const TaskPlan& t : plan.tasks) pids.push_back(t.pid);
  return pids;
}

TEST(Plan, DemoSet) {
  RestorePlan plan = MustPlan(test::DemoImages());
  EXPECT_TRUE(plan.ns.new_pid);
  EXPECT_TRUE(plan.ns.new_mnt);
  EXPECT_EQ(Pids(plan), (std::vector<pid_t>{1, 2, 3, 4, 5}));
  const TaskPlan* zombie = plan.FindTask(5);
  ASSERT_NE(zombie, nullptr);
  EXPECT_EQ(zombie->kind, TaskKind::kZombie);
  EXPECT_EQ(zombie->exit_status, 0x300u);
  const TaskPlan* master = plan.FindTask(2);
  ASSERT_EQ(master->fds.size(), 3u);
  EXPECT_EQ(master->fds[1].fd, 4);
  EXPECT_TRUE(master->fds[1].cloexec);
  EXPECT_EQ(plan.FindTask(3)->seccomp.size(), 1u);
  ASSERT_TRUE(plan.FindTask(1)->resume.has_value());
  EXPECT_EQ(plan.FindTask(1)->resume->argv, (std::vector<std::string>{"sleep", "infinity"}));
  EXPECT_FALSE(plan.FindTask(2)->resume.has_value());
  EXPECT_EQ(plan.FindTask(4)->fds.back().fd, 20) << "the FIFO fd";

  ASSERT_EQ(plan.autofs.size(), 2u);
  const AutofsPlan& live = plan.autofs[0].catatonic ? plan.autofs[1] : plan.autofs[0];
  const AutofsPlan& dead = plan.autofs[0].catatonic ? plan.autofs[0] : plan.autofs[1];
  EXPECT_EQ(live.path, "/auto");
  EXPECT_EQ(live.master, 2);
  EXPECT_EQ(live.pipe_fd, 5);
  EXPECT_FALSE(live.write_end_closed);
  EXPECT_EQ(live.mode, 1);
  EXPECT_EQ(dead.path, "/dead");
  EXPECT_TRUE(dead.catatonic);

  ASSERT_EQ(plan.pipe_data.size(), 3u);
  EXPECT_EQ(plan.placement.front(), 100u);
}

TEST(Plan, BindsComeAfterTheirSourceAndJoinItsGroup) {
  RestorePlan plan = MustPlan(test::DemoImages());
  auto pos = [&](uint32_t id) {
    for (size_t i = 0; i < plan.mounts.size(); ++i) {
      if (plan.mounts[i].mnt_id == id) return i;
    }
    return plan.mounts.size();
  };
  EXPECT_EQ(plan.FindMount(103)->how, MountSource::kBind);
  EXPECT_EQ(plan.FindMount(103)->bind_of, 102u);
  EXPECT_LT(pos(102), pos(103));
  EXPECT_LT(pos(102), pos(104));
  ASSERT_EQ(plan.sharing.size(), 3u);
  EXPECT_EQ(plan.sharing[0].op, SharingStep::Op::kMakeShared);
  EXPECT_EQ(plan.sharing[0].mnt, 102u);
  EXPECT_EQ(plan.sharing[1].op, SharingStep::Op::kJoinGroup);
  EXPECT_EQ(plan.sharing[1].mnt, 103u);
  EXPECT_EQ(plan.sharing[2].op, SharingStep::Op::kSlaveOf);
  EXPECT_EQ(plan.sharing[2].mnt, 104u);
  EXPECT_EQ(plan.sharing[2].peer, 102u);
}

// Seed 004: the order of mounts in the image must not matter.
TEST(Plan, MountOrderInTheImageDoesNotMatter) {
  test::ImageSet set = test::DemoImages();
  RestorePlan forward = MustPlan(set);
  auto& mnts = set.at("mountpoints-4026532101.img").entries;
  std::reverse(mnts.begin(), mnts.end());
  RestorePlan reverse = MustPlan(set);
  EXPECT_EQ(forward.placement, reverse.placement);
  ASSERT_EQ(forward.sharing.size(), reverse.sharing.size());
  for (size_t i = 0; i < forward.sharing.size(); ++i) {
    EXPECT_EQ(forward.sharing[i].op, reverse.sharing[i].op);
    EXPECT_EQ(forward.sharing[i].mnt, reverse.sharing[i].mnt);
  }
}

// A tmpfs on /mnt covering a mount below /mnt that has the same parent: the
// covered one was there first and is placed first, whatever the mount ids
// (the kernel reuses them), and a bind from the covering tmpfs after it.
TEST(Plan, ACoveredSiblingIsPlacedBeforeTheMountThatCoversIt) {
  test::ImageSet set = test::TreeImages({{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}});
  test::AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                        {.id = 41, .parent = 40, .mountpoint = "/mnt", .dev = 50},
                        {.id = 42, .parent = 41, .mountpoint = "/mnt/bs", .root = "/sub", .dev = 50},
                        {.id = 60, .parent = 40, .mountpoint = "/mnt/deep/below", .dev = 60}});
  RestorePlan plan = MustPlan(set);
  EXPECT_EQ(plan.placement, (std::vector<uint32_t>{40, 60, 41, 42}));
}

TEST(Plan, SlaveOfAGroupOutsideTheImage) {
  test::ImageSet set = test::DemoImages();
  test::Mutable<img::mnt_entry>(set, "mountpoints-4026532101.img", 0).set_master_id(77);
  RestorePlan plan = MustPlan(set);
  auto step = std::find_if(plan.sharing.begin(), plan.sharing.end(), [](const SharingStep& s) { return s.mnt == 100; });
  ASSERT_NE(step, plan.sharing.end());
  EXPECT_EQ(step->op, SharingStep::Op::kSlaveOfExternal);
  EXPECT_EQ(step->group, 77u);
}

// Two slaves of one group outside the images (not themselves shared):
// without --enable-external-masters each is restored private (no join from
// a private mount, which MOVE_MOUNT_SET_GROUP refuses); with it each joins
// the caller's group through the external mount it is bound from, and one
// made anew is refused, named.
TEST(Plan, SlavesOfAGroupOutsideTheImagesJoinItOnlyWhenAsked) {
  test::ImageSet set = test::TreeImages({{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}});
  test::AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                        {.id = 41, .parent = 40, .mountpoint = "/ext", .master = 9, .dev = 50, .external = true, .ext_key = "ext"},
                        {.id = 42, .parent = 40, .mountpoint = "/bound", .root = "/sub", .master = 9, .dev = 50}});
  auto steps = [](const RestorePlan& plan) {
    std::string out;
    for (const SharingStep& s : plan.sharing) {
      out += fmt::format("{}:{}:{}:{} ", static_cast<int>(s.op), s.mnt, s.peer, s.group);
    }
    return out;
  };
  const int external = static_cast<int>(SharingStep::Op::kSlaveOfExternal);
  EXPECT_EQ(steps(MustPlan(set)), fmt::format("{0}:41:0:9 {0}:42:0:9 ", external));
  PlanOptions options{.external_keys = {"ext"}, .external_masters = true};
  PlanOutcome asked = BuildPlan(test::ToImageDir(set), options);
  ASSERT_TRUE(asked.plan.has_value()) << (asked.errors.empty() ? "" : asked.errors[0].ToString());
  EXPECT_EQ(steps(*asked.plan), fmt::format("{0}:41:41:9 {0}:42:41:9 ", external));
  // A peer group of such slaves: its first joins the outside group, the others join it.
  test::Mutable<img::mnt_entry>(set, "mountpoints-3001.img", 1).set_shared_id(5);
  test::Mutable<img::mnt_entry>(set, "mountpoints-3001.img", 2).set_shared_id(5);
  asked = BuildPlan(test::ToImageDir(set), options);
  ASSERT_TRUE(asked.plan.has_value());
  EXPECT_EQ(steps(*asked.plan), fmt::format("{}:41:41:9 {}:41:0:5 {}:42:41:5 ", external, static_cast<int>(SharingStep::Op::kMakeShared),
                                            static_cast<int>(SharingStep::Op::kJoinGroup)));
  // Made anew, a mount cannot join a group of the caller's superblock.
  test::ImageSet fresh = test::TreeImages({{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}});
  test::AddMounts(fresh, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                          {.id = 41, .parent = 40, .mountpoint = "/own", .master = 9, .dev = 50}});
  PlanOutcome refused = BuildPlan(test::ToImageDir(fresh), options);
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_NE(refused.errors[0].ToString().find(": entry 1: mount 41 at /own was a slave of peer group 9 outside the images, but it is made anew"),
            std::string::npos)
      << refused.errors[0].ToString();
}

// A namespace restore-orch does not create: a task whose id differs from
// the inventory's outside one is refused (it would come back in the
// caller's); an id the images leave out, or the same one, is not.
TEST(Plan, TaskInANamespaceOfItsOwnThatIsNotRestoredIsRefused) {
  for (const char* kind : {"network", "time"}) {
    test::ImageSet set = test::DemoImages();
    auto* outside = test::Mutable<img::inventory_entry>(set, "inventory.img", 0).mutable_root_ids();
    auto* ids = test::Mutable<img::core_entry>(set, "core-3.img", 0).mutable_ids();
    if (std::string(kind) == "network") {
      outside->set_net_ns_id(2);
      ids->set_net_ns_id(2);
      EXPECT_TRUE(BuildPlan(test::ToImageDir(set), {.ext_mount_map_auto = true}).plan.has_value());
      ids->set_net_ns_id(9);
    } else {
      ids->set_time_ns_id(9);  // the inventory does not name one: not compared
      EXPECT_TRUE(BuildPlan(test::ToImageDir(set), {.ext_mount_map_auto = true}).plan.has_value());
      outside->set_time_ns_id(5);
    }
    PlanOutcome out = BuildPlan(test::ToImageDir(set), {.ext_mount_map_auto = true});
    ASSERT_FALSE(out.plan.has_value()) << kind;
    std::string all;
    for (const Error& e : out.errors) all += e.ToString() + "\n";
    EXPECT_NE(all.find(std::string("core-3.img: entry 0: task 3 is in a ") + kind + " namespace of its own (id 9)"), std::string::npos) << all;
  }
}

// The demo set with every task in UTS namespace 7, the inventory's outside
// one 3, and utsns-7.img holding `host` and `domain` (no image: nullopt).
test::ImageSet InUtsNamespace(std::optional<std::string> host, const std::string& domain = "") {
  test::ImageSet set = test::DemoImages();
  test::Mutable<img::inventory_entry>(set, "inventory.img", 0).mutable_root_ids()->set_uts_ns_id(3);
  for (auto& [name, file] : set) {
    if (name.rfind("core-", 0) != 0) continue;
    auto& core = static_cast<img::core_entry&>(*file.entries[0].message);
    if (core.has_ids()) core.mutable_ids()->set_uts_ns_id(7);  // zombies have none
  }
  if (host) {
    auto e = std::make_unique<img::utsns_entry>();
    e->set_nodename(*host);
    e->set_domainname(domain);
    ImageFile f;
    f.kind = &UtsnsKind();
    f.entries.push_back(Entry{std::move(e), {}});
    set.emplace("utsns-7.img", std::move(f));
  }
  return set;
}

std::string PlanErrors(const test::ImageSet& set) {
  PlanOutcome out = BuildPlan(test::ToImageDir(set), {.ext_mount_map_auto = true});
  std::string all;
  for (const Error& e : out.errors) all += e.ToString() + "\n";
  return out.plan ? "planned" : all;
}

// A tree in a UTS namespace of its own comes back in a new one with its
// names; one it shares with the caller (the inventory's id) does not.
TEST(Plan, AUtsNamespaceOfTheTreesOwn) {
  RestorePlan plan = MustPlan(InUtsNamespace("box-1", "example.org"));
  ASSERT_TRUE(plan.ns.uts.has_value());
  EXPECT_EQ(plan.ns.uts->ns_id, 7u);
  EXPECT_EQ(plan.ns.uts->nodename, "box-1");
  EXPECT_EQ(plan.ns.uts->domainname, "example.org");
  EXPECT_NE(FormatPlan(plan).find("a new UTS namespace (utsns-7.img): hostname \"box-1\", domainname \"example.org\""), std::string::npos)
      << FormatPlan(plan);
  test::ImageSet shared = InUtsNamespace(std::nullopt);
  test::Mutable<img::inventory_entry>(shared, "inventory.img", 0).mutable_root_ids()->set_uts_ns_id(7);
  EXPECT_FALSE(MustPlan(shared).ns.uts.has_value());
  EXPECT_FALSE(MustPlan(test::DemoImages()).ns.uts.has_value());  // no ids at all
}

TEST(Plan, AUtsNamespaceTheKernelWouldNotTakeIsRefused) {
  EXPECT_NE(PlanErrors(InUtsNamespace(std::nullopt)).find("utsns-7.img: missing: the root task is in a UTS namespace of its own (id 7)"),
            std::string::npos);
  EXPECT_NE(PlanErrors(InUtsNamespace(std::string(65, 'h'))).find("utsns-7.img: entry 0: nodename is 65 bytes long: the kernel takes at most 64"),
            std::string::npos);
  EXPECT_EQ(PlanErrors(InUtsNamespace(std::string(64, 'h'), std::string(64, 'd'))), "planned");
  EXPECT_NE(PlanErrors(InUtsNamespace("box", std::string("a\0b", 3))).find("domainname holds a NUL byte"), std::string::npos);
  test::ImageSet two = InUtsNamespace("box");
  test::Mutable<img::core_entry>(two, "core-3.img", 0).mutable_ids()->set_uts_ns_id(8);
  EXPECT_NE(PlanErrors(two).find("core-3.img: entry 0: task 3 is in another UTS namespace (id 8) than the root task (id 7)"), std::string::npos)
      << PlanErrors(two);
}

// An IPC namespace's sysctls as a fresh namespace of Linux 6.x has them
// (tabs and newlines as /proc/sys prints them).
std::map<std::string, std::string> FreshIpcSysctls() {
  return {{"kernel/sem", "32000\t1024000000\t500\t32000\n"}, {"kernel/msgmax", "8192\n"}, {"kernel/msgmnb", "16384\n"},
          {"kernel/msgmni", "32000\n"}, {"kernel/auto_msgmni", "0\n"}, {"kernel/shmmax", "18446744073692774399\n"},
          {"kernel/shmall", "18446744073692774399\n"}, {"kernel/shmmni", "4096\n"}, {"kernel/shm_rmid_forced", "0\n"},
          {"fs/mqueue/queues_max", "256\n"}, {"fs/mqueue/msg_max", "10\n"}, {"fs/mqueue/msgsize_max", "8192\n"},
          {"fs/mqueue/msg_default", "10\n"}, {"fs/mqueue/msgsize_default", "8192\n"}, {"kernel/msg_next_id", "-1\n"},
          {"kernel/sem_next_id", "-1\n"}, {"kernel/shm_next_id", "7\n"}};
}

// The demo set with every task in IPC namespace 5 (the inventory's 2) and
// ipcns-var-5.img as `edit` leaves the fresh sysctls.
test::ImageSet InIpcNamespace(const std::function<void(img::ipc_var_entry&)>& edit) {
  test::ImageSet set = test::DemoImages();
  test::Mutable<img::inventory_entry>(set, "inventory.img", 0).mutable_root_ids()->set_ipc_ns_id(2);
  for (auto& [name, file] : set) {
    if (name.rfind("core-", 0) != 0) continue;
    auto& core = static_cast<img::core_entry&>(*file.entries[0].message);
    if (core.has_ids()) core.mutable_ids()->set_ipc_ns_id(5);
  }
  auto var = IpcVarFromSysctls(FreshIpcSysctls());
  EXPECT_TRUE(var.ok()) << var.error().ToString();
  auto e = std::make_unique<img::ipc_var_entry>(var.ok() ? *var : img::ipc_var_entry{});
  if (edit) edit(*e);
  ImageFile f;
  f.kind = &IpcVarKind();
  f.entries.push_back(Entry{std::move(e), {}});
  set.emplace("ipcns-var-5.img", std::move(f));
  return set;
}

TEST(Plan, AnIpcNamespaceOfTheTreesOwnGetsItsSysctls) {
  RestorePlan plan = MustPlan(InIpcNamespace(nullptr));
  ASSERT_TRUE(plan.ns.ipc.has_value());
  EXPECT_EQ(plan.ns.ipc->ns_id, 5u);
  std::map<std::string, std::string> written(plan.ns.ipc->sysctls.begin(), plan.ns.ipc->sysctls.end());
  EXPECT_EQ(written.count("kernel/shm_next_id"), 0u);  // written after the objects, which reset it
  written.insert(plan.ns.ipc->next_ids.begin(), plan.ns.ipc->next_ids.end());
  EXPECT_EQ(written["kernel/sem"], "32000 1024000000 500 32000");
  EXPECT_EQ(written["kernel/shmmax"], "18446744073692774399");
  EXPECT_EQ(written["kernel/shm_next_id"], "7");
  EXPECT_EQ(written.count("kernel/msg_next_id"), 0u);  // -1: nothing to ask
  EXPECT_EQ(written.count("kernel/auto_msgmni"), 0u);  // a no-op the kernel keeps for old tools
  EXPECT_EQ(written.size(), 14u);  // 17 sysctls but auto_msgmni and two next ids of -1
  EXPECT_NE(FormatPlan(plan).find("a new IPC namespace (ipcns-var-5.img), its sysctls written: kernel/sem=32000 1024000000 500 32000"),
            std::string::npos);
  EXPECT_FALSE(MustPlan(test::DemoImages()).ns.ipc.has_value());
}

TEST(Plan, IpcSysctlsTheKernelWouldNotTakeAreRefused) {
  auto refused = [](const std::function<void(img::ipc_var_entry&)>& edit, const std::string& want) {
    std::string errors = PlanErrors(InIpcNamespace(edit));
    EXPECT_NE(errors.find("ipcns-var-5.img: entry 0: " + want), std::string::npos) << errors;
  };
  refused([](img::ipc_var_entry& e) { e.add_sem_ctls(1); }, "sem_ctls holds 5 values, not 4");
  refused([](img::ipc_var_entry& e) { e.set_shm_rmid_forced(2); }, "shm_rmid_forced 2 is outside 0..1");
  refused([](img::ipc_var_entry& e) { e.set_mq_msg_max(0); }, "mq_msg_max 0 is outside 1..65536");
  refused([](img::ipc_var_entry& e) { e.set_mq_msgsize_max(1u << 30); }, "mq_msgsize_max 1073741824 is outside 128..16777216");
  refused([](img::ipc_var_entry& e) { e.set_shm_next_id(0x80000000u); }, "shm_next_id 2147483648 is outside 0..2147483647");
  refused([](img::ipc_var_entry& e) { e.set_msg_ctlmax(0x80000000u); }, "msg_ctlmax 2147483648 is outside 0..2147483647");
  test::ImageSet none = InIpcNamespace(nullptr);
  none.erase("ipcns-var-5.img");
  EXPECT_NE(PlanErrors(none).find("ipcns-var-5.img: missing: the root task is in an IPC namespace of its own (id 5)"), std::string::npos);
  test::ImageSet two = InIpcNamespace(nullptr);
  test::Mutable<img::core_entry>(two, "core-3.img", 0).mutable_ids()->set_ipc_ns_id(6);
  EXPECT_NE(PlanErrors(two).find("task 3 is in another IPC namespace (id 6) than the root task (id 5)"), std::string::npos);
}

// ipc_desc_entry fields for test objects: owner 1000:1001, creator 0:0.
void Describe(img::ipc_desc_entry* d, uint32_t id, uint32_t key, uint32_t mode) {
  d->set_key(key);
  d->set_uid(1000);
  d->set_gid(1001);
  d->set_cuid(0);
  d->set_cgid(0);
  d->set_mode(mode);
  d->set_id(id);
}

// InIpcNamespace's set with a segment of 10 bytes (inline contents), a
// queue of two messages and a set of three semaphores, as `edit` leaves
// their files.
test::ImageSet WithSysvObjects(const std::function<void(test::ImageSet&)>& edit) {
  test::ImageSet set = InIpcNamespace(nullptr);
  auto shm = std::make_unique<img::ipc_shm_entry>();
  Describe(shm->mutable_desc(), 32768, 0x1234, 0640);
  shm->set_size(10);
  ImageFile s;
  s.kind = &IpcShmKind();
  s.entries.push_back(Entry{std::move(shm), std::string("0123456789\0\0", 12)});
  set.emplace("ipcns-shm-5.img", std::move(s));
  auto msg = std::make_unique<img::ipc_msg_entry>();
  Describe(msg->mutable_desc(), 42, 0x2345, 0600);
  msg->set_qbytes(1000);
  msg->set_qnum(2);
  ImageFile m;
  m.kind = &IpcMsgKind();
  m.entries.push_back(Entry{std::move(msg), MsgQueuePayload({{1, "hello"}, {9, std::string(300, 'x')}})});
  set.emplace("ipcns-msg-5.img", std::move(m));
  auto sem = std::make_unique<img::ipc_sem_entry>();
  Describe(sem->mutable_desc(), 0, 0, 0660);
  sem->set_nsems(3);
  ImageFile e;
  e.kind = &IpcSemKind();
  e.entries.push_back(Entry{std::move(sem), SemPayload({0, 7, 32767})});
  set.emplace("ipcns-sem-5.img", std::move(e));
  if (edit) edit(set);
  return set;
}

TEST(Plan, SystemVObjectsArePlannedWithTheirIdsOwnersAndContents) {
  RestorePlan plan = MustPlan(WithSysvObjects(nullptr));
  ASSERT_TRUE(plan.ns.ipc.has_value());
  const IpcPlan& ipc = *plan.ns.ipc;
  ASSERT_EQ(ipc.shm.size(), 1u);
  EXPECT_EQ(ipc.shm[0].perm.id, 32768);
  EXPECT_EQ(ipc.shm[0].perm.key, 0x1234u);
  EXPECT_EQ(ipc.shm[0].perm.uid, 1000u);
  EXPECT_EQ(ipc.shm[0].perm.mode, 0640u);
  EXPECT_EQ(ipc.shm[0].size, 10u);
  EXPECT_EQ(ipc.shm[0].contents, "0123456789");
  ASSERT_EQ(ipc.msg.size(), 1u);
  ASSERT_EQ(ipc.msg[0].messages.size(), 2u);
  EXPECT_EQ(ipc.msg[0].messages[0].mtype, 1u);
  EXPECT_EQ(ipc.msg[0].messages[0].text, "hello");
  EXPECT_EQ(ipc.msg[0].messages[1].text, std::string(300, 'x'));
  EXPECT_EQ(ipc.msg[0].qbytes, 1000u);
  ASSERT_EQ(ipc.sem.size(), 1u);
  EXPECT_EQ(ipc.sem[0].values, (std::vector<uint16_t>{0, 7, 32767}));
  std::string shown = FormatPlan(plan);
  EXPECT_NE(shown.find("System V shared memory segment id 32768 key 0x00001234 owner 1000:1001 creator 0:0 mode 640, 10 bytes, contents inline"),
            std::string::npos) << shown;
  EXPECT_NE(shown.find("System V message queue id 42 key 0x00002345 owner 1000:1001 creator 0:0 mode 600, qbytes 1000, 2 messages (305 bytes)"),
            std::string::npos) << shown;
  EXPECT_NE(shown.find("System V semaphore set id 0 key 0x00000000 owner 1000:1001 creator 0:0 mode 660, values 0 7 32767"), std::string::npos)
      << shown;
}

TEST(Plan, SystemVObjectsTheKernelWouldNotTakeAreRefused) {
  auto refused = [](const std::function<void(test::ImageSet&)>& edit, const std::string& want) {
    std::string errors = PlanErrors(WithSysvObjects(edit));
    EXPECT_NE(errors.find(want), std::string::npos) << errors;
  };
  auto shm = [](test::ImageSet& set) -> img::ipc_shm_entry& { return test::Mutable<img::ipc_shm_entry>(set, "ipcns-shm-5.img", 0); };
  auto msg = [](test::ImageSet& set) -> img::ipc_msg_entry& { return test::Mutable<img::ipc_msg_entry>(set, "ipcns-msg-5.img", 0); };
  auto sem = [](test::ImageSet& set) -> img::ipc_sem_entry& { return test::Mutable<img::ipc_sem_entry>(set, "ipcns-sem-5.img", 0); };
  refused([&](test::ImageSet& s) { shm(s).mutable_desc()->set_mode(01640); },
          "ipcns-shm-5.img: entry 0: shared memory segment 32768 was marked for removal (IPC_RMID) while attached: it is not restored");
  refused([&](test::ImageSet& s) { shm(s).set_hugetlb_flag(04000); }, "shared memory segment 32768 is a hugetlb segment (SHM_HUGETLB): not supported");
  refused([&](test::ImageSet& s) { shm(s).mutable_desc()->set_mode(04640); }, "ipcns-shm-5.img: entry 0: mode 4640 has bits a restore cannot give (4000)");
  refused([&](test::ImageSet& s) { shm(s).mutable_desc()->set_id(0x80000000u); }, "id 2147483648 is not an IPC id (above INT_MAX)");
  refused([&](test::ImageSet& s) { shm(s).set_size(1ull << 47); }, "shared memory segment 32768: size 140737488355328 is not within 1..2^46 (64 TiB)");
  refused([&](test::ImageSet& s) { msg(s).set_qbytes(200); }, "message queue 42: 2 messages of 305 bytes do not fit its qbytes 200 (a bound on both)");
  refused([&](test::ImageSet& s) { msg(s).set_qbytes(1); s["ipcns-msg-5.img"].entries[0].payload = MsgQueuePayload({{1, ""}, {2, ""}}); },
          "message queue 42: 2 messages of 0 bytes do not fit its qbytes 1 (a bound on both)");
  refused([&](test::ImageSet& s) { shm(s).mutable_desc()->set_cuid(UINT32_MAX); }, "ipcns-shm-5.img: entry 0: cuid 4294967295 is no user or group ((uid_t)-1)");
  refused([&](test::ImageSet& s) { shm(s).set_in_pagemaps(true); s["ipcns-shm-5.img"].entries[0].payload.clear(); },
          "shared memory segment 32768 has its contents in pagemaps, but pagemap-shmem-32768.img is missing");
  refused([&](test::ImageSet& s) { s["ipcns-msg-5.img"].entries[0].payload = MsgQueuePayload({{0, "a"}, {1, "b"}}); },
          "message queue 42: message 0 has type 0 (a message type is 1..LONG_MAX)");
  refused([&](test::ImageSet& s) { s["ipcns-sem-5.img"].entries[0].payload = SemPayload({1, 40000, 2}); },
          "ipcns-sem-5.img: entry 0: semaphore set 0: semaphore 1 has value 40000, above SEMVMX (32767)");
  refused([&](test::ImageSet& s) { sem(s).set_nsems(0); s["ipcns-sem-5.img"].entries[0].payload.clear(); },
          "semaphore set 0: 0 semaphores is not within 1..INT_MAX");
  // Keys of different kinds may be equal.
  EXPECT_EQ(PlanErrors(WithSysvObjects([&](test::ImageSet& s) { sem(s).mutable_desc()->set_key(0x2345); })), "planned");
  refused([&](test::ImageSet& s) {
    ImageFile& f = s["ipcns-shm-5.img"];
    auto again = std::make_unique<img::ipc_shm_entry>(static_cast<const img::ipc_shm_entry&>(*f.entries[0].message));
    again->mutable_desc()->set_key(0x99);
    f.entries.push_back(Entry{std::move(again), std::string("0123456789\0\0", 12)});
  }, "ipcns-shm-5.img: entry 1: id 32768 appears twice");
  refused([&](test::ImageSet& s) {
    ImageFile& f = s["ipcns-shm-5.img"];
    auto again = std::make_unique<img::ipc_shm_entry>(static_cast<const img::ipc_shm_entry&>(*f.entries[0].message));
    again->mutable_desc()->set_id(0);
    f.entries.push_back(Entry{std::move(again), std::string("0123456789\0\0", 12)});
  }, "ipcns-shm-5.img: entry 1: ids 32768 and 0 share the index 0 (id modulo 32768), which no kernel gives two objects");
  refused([&](test::ImageSet& s) {
    ImageFile& f = s["ipcns-shm-5.img"];
    auto again = std::make_unique<img::ipc_shm_entry>(static_cast<const img::ipc_shm_entry&>(*f.entries[0].message));
    again->mutable_desc()->set_id(1);
    f.entries.push_back(Entry{std::move(again), std::string("0123456789\0\0", 12)});
  }, "ipcns-shm-5.img: entry 1: key 0x00001234 appears twice");
  // Limits lowered below what the objects use: made under limits that fit
  // them, then given the images' values.
  RestorePlan lowered = MustPlan(WithSysvObjects([](test::ImageSet& s) {
    auto& var = test::Mutable<img::ipc_var_entry>(s, "ipcns-var-5.img", 0);
    var.set_shm_ctlmax(8);
    var.set_msg_ctlmax(100);
    var.set_sem_ctls(0, 2);
    var.set_shm_rmid_forced(1);
  }));
  std::map<std::string, std::string> creation(lowered.ns.ipc->creation.begin(), lowered.ns.ipc->creation.end());
  EXPECT_EQ(creation["kernel/shmmax"], "10");
  EXPECT_EQ(creation["kernel/msgmax"], "300");
  EXPECT_EQ(creation["kernel/sem"], "3 1024000000 500 32000");
  EXPECT_EQ(creation["kernel/shm_rmid_forced"], "0");
  std::map<std::string, std::string> after(lowered.ns.ipc->sysctls.begin(), lowered.ns.ipc->sysctls.end());
  EXPECT_EQ(after["kernel/shmmax"], "8");
  EXPECT_EQ(after["kernel/msgmax"], "100");
  EXPECT_EQ(after["kernel/shm_rmid_forced"], "1");
}

// InIpcNamespace's set with two POSIX message queues in
// posix-mqueues-5.img ("/work" holding three messages, "/empty" none), as
// `edit` leaves them.
test::ImageSet WithPosixMqueues(const std::function<void(img::posix_mqueue_entry&)>& edit) {
  test::ImageSet set = InIpcNamespace(nullptr);
  ImageFile f;
  f.kind = &PosixMqueuesKind();
  auto work = std::make_unique<img::posix_mqueue_entry>();
  work->set_name("work");
  work->set_uid(1000);
  work->set_gid(1001);
  work->set_mode(0640);
  work->set_maxmsg(30);
  work->set_msgsize(100);
  for (auto [prio, data] : {std::pair<uint32_t, std::string>{9, "urgent"}, {1, "first"}, {1, ""}}) {
    auto* m = work->add_messages();
    m->set_prio(prio);
    m->set_data(data);
  }
  if (edit) edit(*work);
  auto empty = std::make_unique<img::posix_mqueue_entry>();
  empty->set_name("empty");
  empty->set_uid(0);
  empty->set_gid(0);
  empty->set_mode(0600);
  empty->set_maxmsg(1);
  empty->set_msgsize(20000);
  f.entries.push_back(Entry{std::move(work), {}});
  f.entries.push_back(Entry{std::move(empty), {}});
  set.emplace("posix-mqueues-5.img", std::move(f));
  return set;
}

TEST(Plan, PosixMqueuesArePlannedWithTheirMessagesUnderLimitsThatFitThem) {
  RestorePlan plan = MustPlan(WithPosixMqueues(nullptr));
  const IpcPlan& ipc = *plan.ns.ipc;
  ASSERT_EQ(ipc.mqueues.size(), 2u);
  EXPECT_EQ(ipc.mqueues[0].name, "empty");  // by name
  const PosixMqueuePlan& q = ipc.mqueues[1];
  EXPECT_EQ(q.name, "work");
  EXPECT_EQ(q.uid, 1000u);
  EXPECT_EQ(q.gid, 1001u);
  EXPECT_EQ(q.mode, 0640u);
  EXPECT_EQ(q.maxmsg, 30u);
  EXPECT_EQ(q.msgsize, 100u);
  ASSERT_EQ(q.messages.size(), 3u);
  EXPECT_EQ(q.messages[0].prio, 9u);
  EXPECT_EQ(q.messages[0].data, "urgent");
  EXPECT_EQ(q.messages[2].data, "");
  // InIpcNamespace's limits: msg_max 10 and msgsize_max 8192 are below
  // the queues'; queues_max 256 is above their count.
  std::map<std::string, std::string> creation(ipc.creation.begin(), ipc.creation.end());
  EXPECT_EQ(creation["fs/mqueue/msg_max"], "30");
  EXPECT_EQ(creation["fs/mqueue/msgsize_max"], "20000");
  EXPECT_EQ(creation["fs/mqueue/queues_max"], "256");
  std::map<std::string, std::string> after(ipc.sysctls.begin(), ipc.sysctls.end());
  EXPECT_EQ(after["fs/mqueue/msg_max"], "10");
  EXPECT_NE(FormatPlan(plan).find("POSIX message queue /work (posix-mqueues-5.img) owner 1000:1001 mode 640, maxmsg 30 msgsize 100, 3 messages (11 bytes)"),
            std::string::npos)
      << FormatPlan(plan);
}

TEST(Plan, PosixMqueuesTheKernelWouldNotTakeAreRefused) {
  auto refused = [](const std::function<void(img::posix_mqueue_entry&)>& edit, const std::string& want) {
    std::string errors = PlanErrors(WithPosixMqueues(edit));
    EXPECT_NE(errors.find("posix-mqueues-5.img: entry 0: POSIX message queue /" + want), std::string::npos) << errors;
  };
  refused([](img::posix_mqueue_entry& e) { e.set_name(""); }, " has an empty name");
  refused([](img::posix_mqueue_entry& e) { e.set_name("a/b"); }, "a/b has a name with '/' or NUL in it");
  refused([](img::posix_mqueue_entry& e) { e.set_name(".."); }, ".. is named '..', which names no queue");
  refused([](img::posix_mqueue_entry& e) { e.set_name(std::string(256, 'q')); }, std::string(256, 'q') + " has a name of 256 bytes, above NAME_MAX (255)");
  refused([](img::posix_mqueue_entry& e) { e.set_uid(UINT32_MAX); }, "work has owner 4294967295:1001: -1 is no id");
  refused([](img::posix_mqueue_entry& e) { e.set_mode(010640); }, "work has mode 10640: more than permission bits (07777)");
  refused([](img::posix_mqueue_entry& e) { e.set_maxmsg(0); }, "work has maxmsg 0, not within 1..65536 (HARD_MSGMAX)");
  refused([](img::posix_mqueue_entry& e) { e.set_msgsize(1ull << 25); }, "work has msgsize 33554432, not within 1..16777216 (HARD_MSGSIZEMAX)");
  refused([](img::posix_mqueue_entry& e) { e.set_maxmsg(2); }, "work holds 3 messages, more than its maxmsg 2");
  refused([](img::posix_mqueue_entry& e) { e.mutable_messages(1)->set_prio(32768); }, "work message 1 has priority 32768, not below MQ_PRIO_MAX (32768)");
  refused([](img::posix_mqueue_entry& e) { e.mutable_messages(0)->set_data(std::string(101, 'x')); }, "work message 0 has 101 bytes, more than its msgsize 100");
  refused([](img::posix_mqueue_entry& e) { e.mutable_messages(2)->set_prio(2); },
          "work message 2 has priority 2, above the message before it (1): not the order a queue gives them in");
  std::string twice = PlanErrors(WithPosixMqueues([](img::posix_mqueue_entry& e) { e.set_name("empty"); }));
  EXPECT_NE(twice.find("posix-mqueues-5.img: entry 1: POSIX message queue /empty appears twice"), std::string::npos) << twice;
}

TEST(IpcSysctls, ReadTextBecomesTheEntryAndBadTextIsNamed) {
  auto e = IpcVarFromSysctls(FreshIpcSysctls());
  ASSERT_TRUE(e.ok()) << e.error().ToString();
  EXPECT_EQ(e->sem_ctls_size(), 4);
  EXPECT_EQ(e->shm_ctlmax(), 18446744073692774399ull);
  EXPECT_FALSE(e->has_msg_next_id());  // -1, as CRIU leaves it
  EXPECT_EQ(e->shm_next_id(), 7u);
  auto older = FreshIpcSysctls();
  older.erase("kernel/shm_next_id");
  older.erase("fs/mqueue/msg_default");
  auto o = IpcVarFromSysctls(older);
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_FALSE(o->has_shm_next_id());
  EXPECT_FALSE(o->has_mq_msg_default());
  EXPECT_TRUE(IpcVarProblems(*e).empty());
  auto text = FreshIpcSysctls();
  text["kernel/sem"] = "1 2 3\n";
  EXPECT_FALSE(IpcVarFromSysctls(text).ok());
  text = FreshIpcSysctls();
  text["kernel/shmmni"] = "x\n";
  EXPECT_FALSE(IpcVarFromSysctls(text).ok());
  text.erase("kernel/shmmni");
  EXPECT_FALSE(IpcVarFromSysctls(text).ok());
}

TEST(Plan, DeadSessionLeaderGetsAHelperUnderTheRoot) {
  test::ImageSet set = test::DemoImages();
  // Tasks 3 and 4 were in session 7, whose leader has exited.
  auto& t3 = test::Mutable<img::pstree_entry>(set, "pstree.img", 2);
  auto& t4 = test::Mutable<img::pstree_entry>(set, "pstree.img", 3);
  t3.set_sid(7);
  t4.set_sid(7);
  RestorePlan plan = MustPlan(set);
  const TaskPlan* helper = plan.FindTask(7);
  ASSERT_NE(helper, nullptr);
  EXPECT_EQ(helper->kind, TaskKind::kHelper);
  EXPECT_EQ(helper->ppid, 1);
  EXPECT_EQ(helper->sid, 7);
  const TaskPlan* root = plan.FindTask(1);
  EXPECT_NE(std::find(root->children.begin(), root->children.end(), 7), root->children.end());
}

TEST(Plan, DeadGroupLeaderGetsAHelperUnderItsFirstMember) {
  test::ImageSet set = test::DemoImages();
  test::Mutable<img::pstree_entry>(set, "pstree.img", 3).set_pgid(9);
  RestorePlan plan = MustPlan(set);
  const TaskPlan* helper = plan.FindTask(9);
  ASSERT_NE(helper, nullptr);
  EXPECT_EQ(helper->ppid, 4);
  EXPECT_EQ(helper->pgid, 9);
  EXPECT_EQ(helper->sid, 1);
  // Fork order: the helper comes right after the task that forks it.
  auto pids = Pids(plan);
  auto at = std::find(pids.begin(), pids.end(), 4);
  ASSERT_NE(at + 1, pids.end());
  EXPECT_EQ(*(at + 1), 9);
}

std::string Errors(const PlanOutcome& out) {
  std::string all;
  for (const Error& e : out.errors) all += e.ToString() + "\n";
  return all;
}

// A shell's job: tasks in the caller's session (sid 0 in restore-orch's
// images), restored only with --shell-job, and then left there.
TEST(Plan, AShellJobOnlyWithShellJob) {
  test::ImageSet set = test::TreeImages({{.pid = 1, .ppid = 0, .pgid = 0, .sid = 0}, {.pid = 2, .ppid = 1, .pgid = 2, .sid = 0}});
  PlanOutcome refused = BuildPlan(test::ToImageDir(set), {});
  ASSERT_FALSE(refused.plan.has_value());
  EXPECT_EQ(Errors(refused),
            "pstree.img: entry 0: task 1 is in a session outside the tree (sid 0) (and 1 more task): a shell job, "
            "restored only with --shell-job (-j), which leaves it in restore-orch's session and process group\n");
  PlanOutcome ok = BuildPlan(test::ToImageDir(set), {.shell_job = true});
  ASSERT_TRUE(ok.plan.has_value()) << Errors(ok);
  const TaskPlan* root = ok.plan->FindTask(1);
  const TaskPlan* child = ok.plan->FindTask(2);
  EXPECT_EQ(root->sid, 0);
  EXPECT_EQ(root->pgid, 0);
  EXPECT_FALSE(root->setsid);
  EXPECT_EQ(child->sid, 0);
  EXPECT_EQ(child->pgid, 2);
  EXPECT_TRUE(child->leads_group);
}

// CRIU's dump of a shell job in its caller's PID namespace writes the
// shell's numbers: the root's session and group, which no task leads.
TEST(Plan, ACriuShellJobInTheCallersPidNamespace) {
  test::ImageSet set = test::TreeImages({{.pid = 300, .ppid = 0, .pgid = 250, .sid = 250},
                                         {.pid = 301, .ppid = 300, .pgid = 301, .sid = 250},
                                         {.pid = 302, .ppid = 300, .pgid = 250, .sid = 250}},
                                        true);
  PlanOutcome refused = BuildPlan(test::ToImageDir(set), {});
  ASSERT_FALSE(refused.plan.has_value());
  EXPECT_NE(Errors(refused).find("pstree.img: entry 0: task 300 is in a session outside the tree (sid 250, which the root "
                                 "task does not lead) (and 2 more tasks): a shell job, restored only with --shell-job (-j)"),
            std::string::npos)
      << Errors(refused);
  PlanOutcome ok = BuildPlan(test::ToImageDir(set), {.shell_job = true});
  ASSERT_TRUE(ok.plan.has_value()) << Errors(ok);
  for (pid_t pid : {300, 301, 302}) EXPECT_EQ(ok.plan->FindTask(pid)->sid, 0) << pid;
  EXPECT_EQ(ok.plan->FindTask(300)->pgid, 0);
  EXPECT_EQ(ok.plan->FindTask(301)->pgid, 301);
  EXPECT_EQ(ok.plan->FindTask(302)->pgid, 0);
  EXPECT_EQ(ok.plan->tasks.size(), 3u) << "no helper stands in for the shell";
}

TEST(Plan, MasterThatClosedItsWriteEnd) {
  test::ImageSet set = test::DemoImages();
  auto& a = test::Mutable<img::autofs_entry>(set, "autofs-43.img");
  a.set_read_fd(4);
  RestorePlan plan = MustPlan(set);
  const AutofsPlan& live = plan.autofs[0].catatonic ? plan.autofs[1] : plan.autofs[0];
  EXPECT_TRUE(live.write_end_closed);
  EXPECT_EQ(live.pipe_fd, 4);
}

TEST(Plan, FormatNamesEveryStage) {
  std::string text = FormatPlan(MustPlan(test::DemoImages()));
  for (const char* stage : {"1. plan", "2. namespaces", "3. mounts", "4. tasks", "5. files", "6. seccomp", "7. resume"}) {
    EXPECT_NE(text.find(stage), std::string::npos) << stage;
  }
  EXPECT_NE(text.find("taken over by master 2 through its fd 5"), std::string::npos) << text;
}

TEST(Paths, NormalizeAbsolutePath) {
  EXPECT_EQ(NormalizeAbsolutePath("/"), "/");
  EXPECT_EQ(NormalizeAbsolutePath("//a/./b//"), "/a/b");
  EXPECT_FALSE(NormalizeAbsolutePath("a/b"));
  EXPECT_FALSE(NormalizeAbsolutePath(""));
  EXPECT_FALSE(NormalizeAbsolutePath("/a/../b"));
  EXPECT_FALSE(NormalizeAbsolutePath("/.."));
  EXPECT_FALSE(NormalizeAbsolutePath(std::string("/a\0b", 4)));
}

}  // namespace
}  // namespace ro::images
