// A live task's signal and task state into its cores, laid out as CRIU 4.2
// writes it: core.tc, in the leader's core only (sigactions of signals
// 1..64 but SIGKILL and SIGSTOP, the leader's blocked mask, shared pending
// signals, itimers, rlimits, PF_* flags, loginuid, oom_score_adj, child
// subreaper) and core.thread_core, in every thread's core-<tid>.img (robust
// list, scheduling (policy with SCHED_RESET_ON_FORK), mask, sigaltstack,
// parent-death signal, pending signals, credentials, comm, rseq: CRIU's dump_task_thread writes a
// thread's core with thread_info and thread_core only).
#include <sched.h>
#include <signal.h>

#include <cstdlib>

#include "orchestrator/dump/collector.h"
#include "sys/proc.h"

namespace ro::dump {
namespace {

// A capability set as CRIU keeps it: 32-bit words, lowest first.
void AddCaps(google::protobuf::RepeatedField<uint32_t>* words, uint64_t caps) {
  words->Add(static_cast<uint32_t>(caps));
  words->Add(static_cast<uint32_t>(caps >> 32));
}

img::itimer_entry Itimer(const LiveState::Itimer& t) {
  img::itimer_entry e;
  e.set_isec(t.isec);
  e.set_iusec(t.iusec);
  e.set_vsec(t.vsec);
  e.set_vusec(t.vusec);
  return e;
}

void AddSignals(img::signal_queue_entry* queue, const std::vector<std::string>& siginfos) {
  for (const std::string& s : siginfos) queue->add_signals()->set_siginfo(s);
}

}  // namespace

Status Collector::FillSignalState(const Task& t, img::core_entry& core) {
  const LiveState& live = *t.live;
  img::task_core_entry& tc = *core.mutable_tc();
  tc.set_flags(live.stat.flags);
  *tc.mutable_timers()->mutable_real() = Itimer(live.itimers[0]);
  *tc.mutable_timers()->mutable_virt() = Itimer(live.itimers[1]);
  *tc.mutable_timers()->mutable_prof() = Itimer(live.itimers[2]);
  for (const rlimit& l : live.rlimits) {
    img::rlimit_entry* e = tc.mutable_rlimits()->add_rlimits();
    e->set_cur(l.rlim_cur);
    e->set_max(l.rlim_max);
  }
  AddSignals(tc.mutable_signals_s(), live.pending_shared);
  if (auto uid = sys::ReadProcFile(t.Proc("loginuid")); uid.ok()) tc.set_loginuid(static_cast<uint32_t>(std::strtoul(uid->c_str(), nullptr, 10)));
  if (auto adj = sys::ReadProcFile(t.Proc("oom_score_adj")); adj.ok()) tc.set_oom_score_adj(std::atoi(adj->c_str()));
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const sys::KernelSigaction& sa = live.sigactions[static_cast<size_t>(sig)];
    img::sa_entry* e = tc.add_sigactions();
    e->set_sigaction(sa.handler);
    e->set_flags(sa.flags);
    e->set_restorer(sa.restorer);
    e->set_mask(sa.mask);
    e->set_compat_sigaction(false);
  }
  tc.set_child_subreaper(live.child_subreaper != 0);

  const ThreadLive& leader = live.leader();
  tc.set_blk_sigset(leader.sigmask);  // the real mask, not a sigsuspend's
  return FillThreadCore(leader, *core.mutable_thread_core());
}

Status Collector::FillThreadCore(const ThreadLive& live, img::thread_core_entry& th) {
  const std::string& status = live.status;
  th.set_futex_rla(live.robust.head);
  th.set_futex_rla_len(static_cast<uint32_t>(live.robust.len));
  th.set_sched_nice(static_cast<int32_t>(live.stat.nice));
  // As sched_getscheduler gives it: SCHED_RESET_ON_FORK included.
  th.set_sched_policy(static_cast<uint32_t>(live.sched_policy));
  int policy = live.sched_policy & ~SCHED_RESET_ON_FORK;
  if (policy == SCHED_FIFO || policy == SCHED_RR) th.set_sched_prio(static_cast<uint32_t>(live.sched_prio));
  th.set_blk_sigset(live.sigmask);
  img::thread_sas_entry& sas = *th.mutable_sas();
  sas.set_ss_sp(live.ss_sp);
  sas.set_ss_size(live.ss_size);
  sas.set_ss_flags(live.ss_flags);
  if (live.pdeath_sig != 0) th.set_pdeath_sig(static_cast<uint32_t>(live.pdeath_sig));
  AddSignals(th.mutable_signals_p(), live.pending);

  img::creds_entry& cr = *th.mutable_creds();
  std::vector<long> uids = sys::StatusValues(status, "Uid"), gids = sys::StatusValues(status, "Gid");
  if (uids.size() != 4 || gids.size() != 4) return Fail("its status has no Uid/Gid lines of four ids");
  cr.set_uid(static_cast<uint32_t>(uids[0]));
  cr.set_euid(static_cast<uint32_t>(uids[1]));
  cr.set_suid(static_cast<uint32_t>(uids[2]));
  cr.set_fsuid(static_cast<uint32_t>(uids[3]));
  cr.set_gid(static_cast<uint32_t>(gids[0]));
  cr.set_egid(static_cast<uint32_t>(gids[1]));
  cr.set_sgid(static_cast<uint32_t>(gids[2]));
  cr.set_fsgid(static_cast<uint32_t>(gids[3]));
  AddCaps(cr.mutable_cap_inh(), sys::StatusHex(status, "CapInh").value_or(0));
  AddCaps(cr.mutable_cap_prm(), sys::StatusHex(status, "CapPrm").value_or(0));
  AddCaps(cr.mutable_cap_eff(), sys::StatusHex(status, "CapEff").value_or(0));
  AddCaps(cr.mutable_cap_bnd(), sys::StatusHex(status, "CapBnd").value_or(0));
  AddCaps(cr.mutable_cap_amb(), sys::StatusHex(status, "CapAmb").value_or(0));
  cr.set_secbits(static_cast<uint32_t>(live.secbits));
  for (long g : sys::StatusValues(status, "Groups")) cr.add_groups(static_cast<uint32_t>(g));
  if (sys::StatusInnermost(status, "NoNewPrivs") == 1) cr.set_no_new_privs(1);

  th.set_comm(live.comm);
  img::rseq_entry& rs = *th.mutable_rseq_entry();
  rs.set_rseq_abi_pointer(live.rseq.abi_pointer);
  rs.set_rseq_abi_size(live.rseq.abi_size);
  rs.set_signature(live.rseq.signature);
  return {};
}

}  // namespace ro::dump
