// The plan's checks of a task's attributes (images/plan/attrs.cc) and of
// the signal dispositions and VMA advice of a task that continues
// (images/plan/mm.cc), without a kernel: every value is read into the plan
// as the images give it, a value the kernel would refuse or silently change
// is one problem naming the file, the entry, the task and the value, and so
// is one this host could not set (PlanOptions::host: restore-orch's own
// limits, capabilities, nice, no_new_privs, login uid and OOM score).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include "images/plan.h"
#include "images/proto/attrs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/fs.pb.h"
#include "images/proto/mm.pb.h"
#include "test/helpers/test_util.h"

namespace ro::images {
namespace {

constexpr uint64_t kInf = ~uint64_t{0};

std::string Errors(const PlanOutcome& out) {
  std::string errors;
  for (const Error& e : out.errors) errors += e.ToString() + "\n";
  return errors;
}

PlanOutcome Plan(const test::ImageSet& set, std::optional<HostAttrs> host = std::nullopt) {
  PlanOptions options;
  options.ext_mount_map_auto = true;  // the demo set's externals
  options.host = host;
  return BuildPlan(test::ToImageDir(set), options);
}

// A host that can give anything up to its hard limits.
HostAttrs Host() {
  HostAttrs h;
  h.hard_limits.fill(kInf);
  h.hard_limits[7] = 20000;  // RLIMIT_NOFILE
  h.cap_sys_nice = true;
  return h;
}

img::core_entry& Core(test::ImageSet& set, pid_t pid) { return test::Mutable<img::core_entry>(set, "core-" + std::to_string(pid) + ".img"); }

img::thread_core_entry& ThreadCore(test::ImageSet& set, pid_t pid) {
  img::thread_core_entry& th = *Core(set, pid).mutable_thread_core();
  th.set_futex_rla(0);
  th.set_futex_rla_len(0);
  return th;
}

img::creds_entry& Creds(test::ImageSet& set, pid_t pid) {
  img::creds_entry& c = *ThreadCore(set, pid).mutable_creds();
  for (auto set_id : {&img::creds_entry::set_uid, &img::creds_entry::set_gid, &img::creds_entry::set_euid, &img::creds_entry::set_egid,
                      &img::creds_entry::set_suid, &img::creds_entry::set_sgid, &img::creds_entry::set_fsuid, &img::creds_entry::set_fsgid,
                      &img::creds_entry::set_secbits}) {
    (c.*set_id)(0);
  }
  return c;
}

// Task `pid`'s limits: `n` entries of 0/0 (any host can lower), NOFILE as given.
void SetLimits(test::ImageSet& set, pid_t pid, int n, uint64_t nofile_cur, uint64_t nofile_max) {
  auto* list = Core(set, pid).mutable_tc()->mutable_rlimits();
  list->clear_rlimits();
  for (int r = 0; r < n; ++r) {
    img::rlimit_entry* e = list->add_rlimits();
    e->set_cur(r == 7 ? nofile_cur : 0);
    e->set_max(r == 7 ? nofile_max : 0);
  }
}

void Attrs(test::ImageSet& set, pid_t tid, std::optional<uint64_t> slack, std::optional<uint32_t> tsc) {
  auto e = std::make_unique<img::thread_attrs_entry>();
  if (slack) e->set_timer_slack_ns(*slack);
  if (tsc) e->set_tsc_mode(*tsc);
  ImageFile f;
  f.kind = &AttrsKind();
  f.entries.push_back(Entry{std::move(e), {}});
  set.insert_or_assign(MakeFileName(AttrsKind(), static_cast<uint32_t>(tid)), std::move(f));
}

// Refused, with a line holding `want`.
void ExpectRefused(const PlanOutcome& out, const std::string& want) {
  EXPECT_FALSE(out.plan.has_value());
  EXPECT_NE(Errors(out).find(want), std::string::npos) << "want: " << want << "\ngot:\n" << Errors(out);
}

TEST(AttrsPlan, EveryValueIsReadForEachLiveTaskAndThread) {
  test::ImageSet set = test::DemoImages();
  SetLimits(set, 2, 8, 200, 300);
  Core(set, 2).mutable_tc()->set_child_subreaper(true);
  Core(set, 2).mutable_tc()->set_oom_score_adj(300);
  img::thread_core_entry& th = ThreadCore(set, 2);
  th.set_sched_nice(7);
  th.set_sched_policy(3 | 0x40000000);  // SCHED_BATCH | SCHED_RESET_ON_FORK
  th.set_pdeath_sig(15);
  Creds(set, 2).set_no_new_privs(1);
  Attrs(set, 2, 123456, 2);
  PlanOutcome out = Plan(set, Host());
  ASSERT_TRUE(out.plan.has_value()) << Errors(out);
  const AttrsPlan& a = out.plan->FindTask(2)->attrs;
  ASSERT_EQ(a.rlimits.size(), 8u);
  EXPECT_EQ(a.rlimits[7].resource, 7);
  EXPECT_EQ(a.rlimits[7].cur, 200u);
  EXPECT_EQ(a.rlimits[7].max, 300u);
  EXPECT_EQ(a.child_subreaper, true);
  EXPECT_EQ(a.oom_score_adj, 300);
  EXPECT_EQ(a.umask, 022u) << "fs-2.img's";
  ASSERT_EQ(a.threads.size(), 1u);
  EXPECT_EQ(a.threads[0].nice, 7);
  EXPECT_EQ(a.threads[0].policy, 3u | 0x40000000u);
  EXPECT_EQ(a.threads[0].rt_priority, 0u);
  EXPECT_EQ(a.threads[0].pdeath_sig, 15);
  EXPECT_EQ(a.threads[0].no_new_privs, true);
  EXPECT_EQ(a.threads[0].timer_slack_ns, 123456u);
  EXPECT_EQ(a.threads[0].tsc_mode, 2u);
  // What the images do not say stays unset: the task keeps what it inherits.
  const AttrsPlan& b = out.plan->FindTask(4)->attrs;
  EXPECT_TRUE(b.rlimits.empty());
  EXPECT_FALSE(b.child_subreaper || b.oom_score_adj || b.threads[0].nice || b.threads[0].policy || b.threads[0].no_new_privs ||
               b.threads[0].timer_slack_ns || b.threads[0].tsc_mode);
}

TEST(AttrsPlan, ResourceLimitsTheKernelRefuses) {
  test::ImageSet set = test::DemoImages();
  SetLimits(set, 2, 8, 300, 200);
  ExpectRefused(Plan(set), "core-2.img: entry 0: task 2: RLIMIT_NOFILE: soft limit 300 is above its hard limit 200");
  SetLimits(set, 2, 17, 0, 0);
  ExpectRefused(Plan(set), "core-2.img: entry 0: task 2: 17 resource limits, more than the kernel's 16");
  SetLimits(set, 2, 8, 1u << 20, uint64_t{1} << 40);
  ExpectRefused(Plan(set), "task 2: RLIMIT_NOFILE: hard limit 1099511627776 is above fs.nr_open (2147483584)");
  HostAttrs host = Host();
  host.nr_open = 1024;
  SetLimits(set, 2, 8, 100, 2000);
  ExpectRefused(Plan(set, host), "task 2: RLIMIT_NOFILE: hard limit 2000 is above fs.nr_open (1024)");
}

TEST(AttrsPlan, AHardLimitAboveRestoreOrchsNeedsCapSysResource) {
  test::ImageSet set = test::DemoImages();
  SetLimits(set, 3, 8, 200, 30000);
  ExpectRefused(Plan(set, Host()), "core-3.img: entry 0: task 3: RLIMIT_NOFILE: hard limit 30000 is above restore-orch's 20000: "
                                   "raising it needs CAP_SYS_RESOURCE, which restore-orch does not have");
  HostAttrs privileged = Host();
  privileged.cap_sys_resource = true;
  EXPECT_TRUE(Plan(set, privileged).plan.has_value());
  // Without host facts (verify) only the images are checked.
  EXPECT_TRUE(Plan(set).plan.has_value());
  // Lowering is always allowed, and so is unlimited where restore-orch's is.
  SetLimits(set, 3, 8, 10, 20000);
  Core(set, 3).mutable_tc()->mutable_rlimits()->mutable_rlimits(0)->set_max(kInf);
  EXPECT_TRUE(Plan(set, Host()).plan.has_value()) << Errors(Plan(set, Host()));
}

TEST(AttrsPlan, SchedulingOutOfRangeOrNotRestorable) {
  struct Case {
    int nice;
    uint32_t policy, prio;
    std::string want;
  };
  for (const Case& c : {Case{20, 0, 0, "task 3: sched_nice 20 is outside -20..19"},
                        Case{-21, 0, 0, "task 3: sched_nice -21 is outside -20..19"},
                        Case{0, 6, 0, "task 3: sched_policy SCHED_DEADLINE cannot be restored"},
                        Case{0, 9, 0, "task 3: sched_policy 9 is no scheduling policy"},
                        Case{0, 1, 0, "task 3: sched_prio 0 does not fit SCHED_FIFO (1..99)"},
                        Case{0, 2, 100, "task 3: sched_prio 100 does not fit SCHED_RR (1..99)"},
                        Case{0, 3, 5, "task 3: sched_prio 5 does not fit SCHED_BATCH (0)"}}) {
    test::ImageSet set = test::DemoImages();
    img::thread_core_entry& th = ThreadCore(set, 3);
    th.set_sched_nice(c.nice);
    th.set_sched_policy(c.policy);
    if (c.prio != 0) th.set_sched_prio(c.prio);
    ExpectRefused(Plan(set), "core-3.img: entry 0: " + c.want);
  }
  test::ImageSet set = test::DemoImages();
  ThreadCore(set, 3).set_sched_policy(1);
  ThreadCore(set, 3).set_sched_prio(10);
  ThreadCore(set, 3).set_sched_nice(-5);
  EXPECT_TRUE(Plan(set, Host()).plan.has_value());
  HostAttrs unprivileged = Host();
  unprivileged.cap_sys_nice = false;
  PlanOutcome out = Plan(set, unprivileged);
  ExpectRefused(out, "task 3: sched_policy SCHED_FIFO needs CAP_SYS_NICE");
  ExpectRefused(out, "task 3: sched_nice -5 is below restore-orch's 0: lowering it needs CAP_SYS_NICE");
}

TEST(AttrsPlan, ParentDeathSignal) {
  test::ImageSet set = test::DemoImages();
  ThreadCore(set, 4).set_pdeath_sig(65);
  ExpectRefused(Plan(set), "core-4.img: entry 0: task 4: pdeath_sig 65 is no signal (1..64)");
  ThreadCore(set, 4).set_pdeath_sig(9);
  EXPECT_TRUE(Plan(set).plan.has_value());
  // The root task's parent is outside the tree: restore-orch stands in for
  // it and would send the signal as it exits.
  ThreadCore(set, 1).set_pdeath_sig(15);
  ExpectRefused(Plan(set), "core-1.img: entry 0: task 1: parent-death signal 15 of the root task concerns its parent outside the tree");
}

TEST(AttrsPlan, NoNewPrivs) {
  test::ImageSet set = test::DemoImages();
  Creds(set, 2).set_no_new_privs(2);
  ExpectRefused(Plan(set), "core-2.img: entry 0: task 2: no_new_privs 2 is neither 0 nor 1");
  Creds(set, 2).set_no_new_privs(0);
  HostAttrs host = Host();
  host.no_new_privs = true;
  ExpectRefused(Plan(set, host), "task 2: no_new_privs is 0 but restore-orch runs with no_new_privs set, which no task can clear");
  Creds(set, 2).set_no_new_privs(1);
  EXPECT_TRUE(Plan(set, host).plan.has_value());
}

TEST(AttrsPlan, UmaskOomScoreAndLoginUid) {
  test::ImageSet set = test::DemoImages();
  test::Mutable<img::fs_entry>(set, "fs-2.img").set_umask(01000);
  ExpectRefused(Plan(set), "fs-2.img: entry 0: task 2: umask 1000 is beyond 0777");
  set = test::DemoImages();
  Core(set, 2).mutable_tc()->set_oom_score_adj(1001);
  ExpectRefused(Plan(set), "core-2.img: entry 0: task 2: oom_score_adj 1001 is outside -1000..1000");
  Core(set, 2).mutable_tc()->set_oom_score_adj(-100);
  EXPECT_TRUE(Plan(set).plan.has_value());
  ExpectRefused(Plan(set, Host()), "task 2: oom_score_adj -100 is below restore-orch's 0: lowering it needs CAP_SYS_RESOURCE");
  set = test::DemoImages();
  Core(set, 2).mutable_tc()->set_loginuid(1000);
  ExpectRefused(Plan(set, Host()), "task 2: login uid 1000 differs from restore-orch's unset (4294967295), which every restored task gets");
  EXPECT_TRUE(Plan(set).plan.has_value());
}

// A task that does not continue gets restore-orch's credentials: images
// whose ids, capabilities, securebits or groups are others are refused, not
// restored with more privilege than they had.
TEST(AttrsPlan, CredentialsOtherThanRestoreOrchsAreRefused) {
  test::ImageSet set = test::DemoImages();
  img::creds_entry& cr = Creds(set, 2);
  cr.add_cap_bnd(0xfffffffe);  // CAP_CHOWN dropped from the bounding set
  cr.add_cap_bnd(0x1ff);
  HostAttrs host = Host();
  host.caps[3] = 0x1ffffffffffull;
  ExpectRefused(Plan(set, host), "core-2.img: entry 0: task 2: its credentials differ from restore-orch's, which every restored task gets "
                                 "unless it continues (it has no memory images): bounding capabilities 0x1fffffffffe, restore-orch's 0x1ffffffffff");
  EXPECT_TRUE(Plan(set).plan.has_value()) << "only the host's are compared";
  host.caps[3] = 0x1fffffffffeull;
  EXPECT_TRUE(Plan(set, host).plan.has_value()) << Errors(Plan(set, host));
  Creds(set, 2).set_euid(1000);
  ExpectRefused(Plan(set, host), "task 2: its credentials differ from restore-orch's, which every restored task gets unless it continues "
                                 "(it has no memory images): uid 0/1000/0/0");
  Creds(set, 2).set_euid(0);
  Creds(set, 2).set_secbits(0x2f);
  ExpectRefused(Plan(set, host), "securebits 2f, restore-orch's 0");
  Creds(set, 2).set_secbits(0);
  Creds(set, 2).add_groups(27);
  ExpectRefused(Plan(set, host), "supplementary groups 27, restore-orch's none");
}

TEST(AttrsPlan, TimerSlackAndTscMode) {
  test::ImageSet set = test::DemoImages();
  Attrs(set, 3, 0, std::nullopt);
  ExpectRefused(Plan(set), "attrs-3.img: entry 0: task 3: timer slack 0 is a real-time thread's, and it is not one");
  ThreadCore(set, 3).set_sched_policy(2);
  ThreadCore(set, 3).set_sched_prio(1);
  EXPECT_TRUE(Plan(set).plan.has_value()) << Errors(Plan(set));
  Attrs(set, 3, 50000, 3);
  ExpectRefused(Plan(set), "attrs-3.img: entry 0: task 3: tsc_mode 3 is neither PR_TSC_ENABLE (1) nor PR_TSC_SIGSEGV (2)");
}

// CRIU's memory-counter dump: a task that continues.
class ContinuePlan : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = LoadImageDir(std::string(RO_CRIU_FIXTURES) + "/memory-counter/img", Limits{});
    ASSERT_TRUE(loaded.ok()) << loaded.error().ToString();
    dir_ = std::move(loaded).value();
  }
  PlanOutcome Plan(std::optional<HostAttrs> host = std::nullopt) {
    PlanOptions options;
    options.root_given = true;
    options.externals_named_later = true;
    options.host = host;
    return BuildPlan(dir_, options);
  }
  img::creds_entry& Creds() { return *Core().mutable_thread_core()->mutable_creds(); }
  img::core_entry& Core() { return static_cast<img::core_entry&>(*dir_.files.at("core-1.img").entries[0].message); }
  img::mm_entry& Mm() { return static_cast<img::mm_entry&>(*dir_.files.at("mm-1.img").entries[0].message); }
  // The first VMA of `status` (CRIU's VMA_* bits).
  img::vma_entry& Vma(uint32_t status) {
    for (int i = 0; i < Mm().vmas_size(); ++i) {
      if ((Mm().vmas(i).status() & status) == status) return *Mm().mutable_vmas(i);
    }
    throw std::runtime_error("no such VMA");
  }
  ImageDir dir_;
};

TEST_F(ContinuePlan, TheFixtureContinues) {
  PlanOutcome out = Plan();
  ASSERT_TRUE(out.plan.has_value()) << Errors(out);
  EXPECT_EQ(out.plan->FindTask(1)->resume_mode, ResumeMode::kContinue);
  EXPECT_EQ(out.plan->FindTask(1)->cont->sigactions[11].flags, 0x14000000u) << "SIGUSR2's SA_RESTORER|SA_RESTART";
}

// A task that continues gets its uids, gids, capability sets, securebits
// and groups back (the restorer sets them last) when restore-orch, as
// root, can give them.
TEST_F(ContinuePlan, CredentialsComeBackWhenTheRestorerCanGiveThem) {
  HostAttrs host = Host();
  host.cap_sys_resource = true;
  host.nr_open = 1u << 30;
  host.caps = {0, 0x1ffffffffff, 0x1ffffffffff, 0x1ffffffffff, 0};
  auto set_creds = [&] {
    img::creds_entry& c = Creds();
    for (auto f : {&img::creds_entry::set_uid, &img::creds_entry::set_gid, &img::creds_entry::set_euid, &img::creds_entry::set_egid,
                    &img::creds_entry::set_suid, &img::creds_entry::set_sgid, &img::creds_entry::set_fsuid, &img::creds_entry::set_fsgid}) {
      (c.*f)(0);
    }
    c.clear_cap_inh();
    c.add_cap_inh(0x2001);
    c.add_cap_inh(0);
    c.clear_cap_prm();
    c.add_cap_prm(0x2000);
    c.add_cap_prm(0);
    c.clear_cap_eff();
    c.add_cap_eff(0x2000);
    c.add_cap_eff(0);
    c.clear_cap_bnd();
    c.add_cap_bnd(0xfedfefff);
    c.add_cap_bnd(0x1ff);
    c.clear_cap_amb();
    c.add_cap_amb(0x2000);
    c.add_cap_amb(0);
    c.clear_groups();
    c.add_groups(5);
    c.add_groups(6);
    c.set_secbits(0x3);  // SECBIT_NOROOT and its lock
  };
  set_creds();
  PlanOutcome out = Plan(host);
  ASSERT_TRUE(out.plan.has_value()) << Errors(out);
  const auto& creds = out.plan->FindTask(1)->attrs.threads.at(0).creds;
  ASSERT_TRUE(creds.has_value());
  EXPECT_EQ(creds->caps, (std::array<uint64_t, 5>{0x2001, 0x2000, 0x2000, 0x1fffedfefffull, 0x2000}));
  EXPECT_EQ(creds->securebits, 0x3u);
  EXPECT_EQ(creds->groups, (std::vector<uint32_t>{5, 6}));

  HostAttrs no_setpcap = host;
  no_setpcap.caps[2] &= ~(uint64_t{1} << 8);
  ExpectRefused(Plan(no_setpcap), "core-1.img: entry 0: task 1: its credentials cannot be given back: setting its capabilities and "
                                  "securebits needs CAP_SETPCAP, which restore-orch does not have");
  HostAttrs fewer = host;
  fewer.caps[1] = fewer.caps[2] = 0x1140;  // CAP_SETGID, CAP_SETPCAP, CAP_NET_ADMIN
  ExpectRefused(Plan(fewer), "permitted capabilities 0x2000 go beyond restore-orch's 0x1140");
  HostAttrs locked = host;
  locked.securebits = 0x30;  // SECBIT_KEEP_CAPS, locked
  ExpectRefused(Plan(locked), "securebits 0x3 differ from restore-orch's 0x30 where those are locked");
  Creds().set_cap_amb(0, 0x4000);
  ExpectRefused(Plan(host), "ambient capabilities 0x4000 are not all permitted and inheritable");
  set_creds();
  Creds().set_cap_eff(0, 0x2002);
  ExpectRefused(Plan(host), "effective capabilities 0x2002 are not all permitted (0x2000)");
  set_creds();
  Creds().add_cap_bnd(1);
  ExpectRefused(Plan(host), "task 1: cap_bnd has bits past the 64 capabilities a kernel has");
  // Other uids and gids: given with CAP_SETUID and CAP_SETGID when
  // restore-orch's user namespace maps them.
  set_creds();
  Creds().set_euid(1000);
  Creds().set_fsuid(1000);
  Creds().set_sgid(2000);
  out = Plan(host);
  ASSERT_TRUE(out.plan.has_value()) << Errors(out);
  EXPECT_EQ(out.plan->FindTask(1)->attrs.threads.at(0).creds->uids, (std::array<uint32_t, 4>{0, 1000, 0, 1000}));
  EXPECT_EQ(out.plan->FindTask(1)->attrs.threads.at(0).creds->gids, (std::array<uint32_t, 4>{0, 0, 2000, 0}));
  HostAttrs no_setuid = host;
  no_setuid.caps[2] &= ~(uint64_t{1} << 7);
  ExpectRefused(Plan(no_setuid), "task 1: its credentials cannot be given back: setting its uids 0/1000/0/1000 needs CAP_SETUID");
  HostAttrs no_setgid = host;
  no_setgid.caps[2] &= ~(uint64_t{1} << 6);
  ExpectRefused(Plan(no_setgid), "setting its supplementary groups needs CAP_SETGID");
  HostAttrs mapped = host;
  mapped.uid_map = {{0, 100000, 1000}};
  ExpectRefused(Plan(mapped), "uid 1000 is not mapped in restore-orch's user namespace");
  mapped = host;
  mapped.gid_map = {{0, 100000, 65536}, {70000, 300000, 10}};
  EXPECT_TRUE(Plan(mapped).plan.has_value());
  mapped.gid_map = {{0, 100000, 1000}, {2001, 300000, 10}};
  ExpectRefused(Plan(mapped), "gid 2000 is not mapped in restore-orch's user namespace");
  HostAttrs fixup_locked = host;
  fixup_locked.securebits = 0x8;  // SECBIT_NO_SETUID_FIXUP locked off
  ExpectRefused(Plan(fixup_locked), "a new uid would drop its capabilities: restore-orch's securebits lock SECBIT_NO_SETUID_FIXUP off");
  Creds().set_suid(4294967295u);
  ExpectRefused(Plan(host), "task 1: uid 0/1000/4294967295/1000 (real/effective/saved/fs) holds 4294967295, which is no id");
  set_creds();
  EXPECT_TRUE(Plan().plan->FindTask(1)->attrs.threads.at(0).creds.has_value()) << "without a host, the images' are read";
}

TEST_F(ContinuePlan, SignalDispositionsTheKernelWouldChange) {
  Core().mutable_tc()->mutable_sigactions(1)->set_flags(0x80000000u | 0x100);  // SIGINT: SA_RESETHAND and an unknown bit
  ExpectRefused(Plan(), "core-1.img: entry 0: the sigaction of signal 2 has flags 0x100 the kernel does not know");
  SetUp();
  Core().mutable_tc()->mutable_sigactions(2)->set_mask(1u << 8);  // SIGQUIT's mask: SIGKILL
  ExpectRefused(Plan(), "the sigaction of signal 3 blocks SIGKILL or SIGSTOP");
  SetUp();
  Core().mutable_tc()->mutable_sigactions(0)->set_compat_sigaction(true);
  ExpectRefused(Plan(), "the sigaction of signal 1 is a 32-bit one");
  SetUp();
  Core().mutable_tc()->mutable_sigactions(0)->set_sigaction(0x800000000000ull);
  ExpectRefused(Plan(), "the sigaction of signal 1 has a handler 0x800000000000 beyond user space");
  SetUp();
  *Core().mutable_tc()->add_sigactions() = Core().tc().sigactions(0);
  ExpectRefused(Plan(), "core-1.img: entry 0: 63 sigactions, more than one per signal");
  SetUp();
  Core().mutable_tc()->mutable_sigactions(1)->set_flags(0x80000000u | 0x04000000u);  // SA_RESETHAND is kept
  EXPECT_TRUE(Plan().plan.has_value()) << Errors(Plan());
}

TEST_F(ContinuePlan, AdviceAVmaCannotKeep) {
  img::vma_entry& anon = Vma(1u << 9);  // VMA_ANON_PRIVATE
  anon.set_madv(uint64_t{1} << MADV_DONTNEED);
  ExpectRefused(Plan(), "madv 0x10: bits 0x10 are no advice a VMA keeps");
  SetUp();
  Vma(1u << 9).set_madv(uint64_t{1} << MADV_HUGEPAGE | uint64_t{1} << MADV_NOHUGEPAGE);
  ExpectRefused(Plan(), "MADV_HUGEPAGE and MADV_NOHUGEPAGE exclude each other");
  SetUp();
  Vma(1u << 9).set_madv(uint64_t{1} << MADV_RANDOM | uint64_t{1} << MADV_SEQUENTIAL);
  ExpectRefused(Plan(), "MADV_RANDOM and MADV_SEQUENTIAL exclude each other");
  SetUp();
  Vma(1u << 6).set_madv(uint64_t{1} << MADV_WIPEONFORK);  // VMA_FILE_PRIVATE
  ExpectRefused(Plan(), "MADV_WIPEONFORK is for private anonymous memory only");
  SetUp();
  Vma(1u << 9).set_madv(uint64_t{1} << MADV_WIPEONFORK | uint64_t{1} << MADV_DONTFORK | uint64_t{1} << MADV_DONTDUMP);
  PlanOutcome out = Plan();
  ASSERT_TRUE(out.plan.has_value()) << Errors(out);
  bool found = false;
  for (const VmaPlan& v : out.plan->FindTask(1)->cont->mm.vmas) found = found || v.madv == (uint64_t{1} << MADV_WIPEONFORK |
                                                                                           uint64_t{1} << MADV_DONTFORK |
                                                                                           uint64_t{1} << MADV_DONTDUMP);
  EXPECT_TRUE(found) << "the advice reaches the plan";
}

}  // namespace
}  // namespace ro::images
