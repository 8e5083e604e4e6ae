// Broken images of a live task's attributes (images/plan/attrs.cc): values
// the kernel would refuse, or take and silently change, each refused by
// --dry-run with exit 2 and its one line naming the file, the entry, the
// task and the value. (Limits above restore-orch's own are checked by
// test/unit/attrs_plan_test.cc and test/ns/attrs_test.cc: they depend on
// the host.)
#include "images/kinds.h"
#include "images/proto/attrs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/fs.pb.h"
#include "test/corpus/corpus.h"

namespace ro::test {
namespace {

using namespace ro::images;

img::core_entry& CoreOf(ImageSet& s, int pid) { return Mutable<img::core_entry>(s, "core-" + std::to_string(pid) + ".img"); }

img::thread_core_entry& ThreadCoreOf(ImageSet& s, int pid) {
  img::thread_core_entry& th = *CoreOf(s, pid).mutable_thread_core();
  th.set_futex_rla(0);
  th.set_futex_rla_len(0);
  return th;
}

// `n` limits of 0/0 (any host may lower to them), NOFILE as given.
void Rlimits(ImageSet& s, int pid, int n, uint64_t nofile_cur, uint64_t nofile_max) {
  auto* list = CoreOf(s, pid).mutable_tc()->mutable_rlimits();
  for (int r = 0; r < n; ++r) {
    img::rlimit_entry* e = list->add_rlimits();
    e->set_cur(r == 7 ? nofile_cur : 0);
    e->set_max(r == 7 ? nofile_max : 0);
  }
}

void AttrsOf(ImageSet& s, int tid, uint64_t slack, uint32_t tsc) {
  auto e = std::make_unique<img::thread_attrs_entry>();
  e->set_timer_slack_ns(slack);
  e->set_tsc_mode(tsc);
  ImageFile f;
  f.kind = &AttrsKind();
  f.entries.push_back(Entry{std::move(e), {}});
  s.insert_or_assign(MakeFileName(AttrsKind(), static_cast<uint32_t>(tid)), std::move(f));
}

}  // namespace

std::vector<Case> AttrsCases() {
  std::vector<Case> c;
  auto edit = [&c](std::string name, std::function<void(ImageSet&)> f, std::string expect) {
    c.push_back({std::move(name), std::move(f), nullptr, std::move(expect)});
  };
  edit("rlimit_soft_above_hard", [](ImageSet& s) { Rlimits(s, 2, 8, 300, 200); },
       "core-2.img: entry 0: task 2: RLIMIT_NOFILE: soft limit 300 is above its hard limit 200");
  edit("rlimits_more_than_the_kernels", [](ImageSet& s) { Rlimits(s, 3, 17, 0, 0); },
       "core-3.img: entry 0: task 3: 17 resource limits, more than the kernel's 16");
  edit("rlimit_nofile_above_nr_open", [](ImageSet& s) { Rlimits(s, 2, 8, 100, uint64_t{1} << 40); },
       "core-2.img: entry 0: task 2: RLIMIT_NOFILE: hard limit 1099511627776 is above fs.nr_open");
  edit("sched_nice_above_19", [](ImageSet& s) { ThreadCoreOf(s, 2).set_sched_nice(20); },
       "core-2.img: entry 0: task 2: sched_nice 20 is outside -20..19");
  edit("sched_policy_unknown", [](ImageSet& s) { ThreadCoreOf(s, 2).set_sched_policy(4); },
       "core-2.img: entry 0: task 2: sched_policy 4 is no scheduling policy");
  edit("sched_policy_deadline", [](ImageSet& s) { ThreadCoreOf(s, 3).set_sched_policy(6); },
       "core-3.img: entry 0: task 3: sched_policy SCHED_DEADLINE cannot be restored");
  edit("sched_prio_of_fifo_0", [](ImageSet& s) { ThreadCoreOf(s, 4).set_sched_policy(1); },
       "core-4.img: entry 0: task 4: sched_prio 0 does not fit SCHED_FIFO (1..99)");
  edit("sched_prio_of_other", [](ImageSet& s) {
         ThreadCoreOf(s, 4).set_sched_policy(0);
         ThreadCoreOf(s, 4).set_sched_prio(3);
       }, "core-4.img: entry 0: task 4: sched_prio 3 does not fit SCHED_OTHER (0)");
  edit("pdeath_sig_no_signal", [](ImageSet& s) { ThreadCoreOf(s, 3).set_pdeath_sig(65); },
       "core-3.img: entry 0: task 3: pdeath_sig 65 is no signal (1..64)");
  edit("pdeath_sig_of_the_root_task", [](ImageSet& s) { ThreadCoreOf(s, 1).set_pdeath_sig(15); },
       "core-1.img: entry 0: task 1: parent-death signal 15 of the root task concerns its parent outside the tree");
  edit("no_new_privs_2", [](ImageSet& s) {
         img::creds_entry& cr = *ThreadCoreOf(s, 2).mutable_creds();
         for (auto set : {&img::creds_entry::set_uid, &img::creds_entry::set_gid, &img::creds_entry::set_euid, &img::creds_entry::set_egid,
                          &img::creds_entry::set_suid, &img::creds_entry::set_sgid, &img::creds_entry::set_fsuid,
                          &img::creds_entry::set_fsgid, &img::creds_entry::set_secbits}) {
           (cr.*set)(0);
         }
         cr.set_no_new_privs(2);
       }, "core-2.img: entry 0: task 2: no_new_privs 2 is neither 0 nor 1");
  edit("umask_beyond_0777", [](ImageSet& s) { Mutable<img::fs_entry>(s, "fs-3.img").set_umask(07777); },
       "fs-3.img: entry 0: task 3: umask 7777 is beyond 0777");
  edit("oom_score_adj_out_of_range", [](ImageSet& s) { CoreOf(s, 4).mutable_tc()->set_oom_score_adj(-1001); },
       "core-4.img: entry 0: task 4: oom_score_adj -1001 is outside -1000..1000");
  edit("timer_slack_0_not_real_time", [](ImageSet& s) { AttrsOf(s, 2, 0, 1); },
       "attrs-2.img: entry 0: task 2: timer slack 0 is a real-time thread's, and it is not one");
  edit("tsc_mode_3", [](ImageSet& s) { AttrsOf(s, 3, 50000, 3); },
       "attrs-3.img: entry 0: task 3: tsc_mode 3 is neither PR_TSC_ENABLE (1) nor PR_TSC_SIGSEGV (2)");
  return c;
}

}  // namespace ro::test
