// verify, task_state: what else a task that continued keeps from its
// images besides its memory and its attributes (as the dump's
// task_state.cc reads it): its personality (/proc/PID/personality) and
// itimers, and per thread its name (comm), blocked signals and
// sigaltstack. The itimers, blocked signals and sigaltstacks are those
// AskTree asked of the stopped tree (attrs.cc); a thread it could not ask
// is reported there. Only tasks that continued are compared: exec gives a
// task a new name, mask and personality of its own.
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdlib>

#include "orchestrator/verify/verifier.h"
#include "sys/proc.h"

namespace ro::verify {
namespace {

std::string Str(long long v) { return std::to_string(v); }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// The kernel never blocks SIGKILL or SIGSTOP (sigprocmask drops them):
// images that hold them mean the same mask.
constexpr uint64_t kUnblockable = (uint64_t{1} << (SIGKILL - 1)) | (uint64_t{1} << (SIGSTOP - 1));

// sigaltstack(2) flags: SS_ONSTACK says only whether the thread runs on the
// stack at that moment; SS_AUTODISARM is the one a thread sets.
constexpr uint64_t kSsDisable = SS_DISABLE, kSsAutodisarm = 1u << 31;

// The name a thread is given as its comm: at most TASK_COMM_LEN - 1 bytes.
constexpr size_t kCommLen = 15;

uint64_t Usec(uint64_t sec, uint64_t usec) { return sec * 1000000 + usec; }

std::string Seconds(uint64_t usec) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%llu.%06llu s", static_cast<unsigned long long>(usec / 1000000),
                static_cast<unsigned long long>(usec % 1000000));
  return buf;
}

// An itimer as both sides hold it: armed or not, its interval and the time left (usec).
struct Itimer {
  bool armed = false;
  uint64_t interval = 0, left = 0;
};

// A periodic ITIMER_REAL that fired and whose SIGALRM waits to be dequeued
// reads 0 left, yet it is armed (the plan arms it one interval on).
Itimer ItimerOf(int which, uint64_t isec, uint64_t iusec, uint64_t vsec, uint64_t vusec) {
  Itimer it{false, Usec(isec, iusec), Usec(vsec, vusec)};
  it.armed = it.left != 0 || (which == ITIMER_REAL && it.interval != 0);
  return it;
}

std::string Describe(const Itimer& it) { return std::string(it.armed ? "armed" : "disarmed") + ", interval " + Seconds(it.interval); }

std::string Altstack(uint64_t sp, uint64_t size, uint64_t flags) {
  if (flags & kSsDisable) return "none";
  return Hex(sp) + " of " + Str(static_cast<long long>(size)) + " bytes" + ((flags & kSsAutodisarm) ? " SS_AUTODISARM" : "");
}

}  // namespace

void Verifier::CompareItimers(const images::ContinuePlan& want, const sys::TaskKnobs& have, const std::string& who) {
  // Rounding of the time left to the clocks' granularity.
  constexpr uint64_t kSlackUsec = 10000;
  const char* names[] = {"ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"};
  for (int which = 0; which < 3; ++which) {
    const images::ItimerPlan& p = want.itimers[which];
    const sys::TaskKnobs::Itimer& l = have.itimers[static_cast<size_t>(which)];
    Itimer w = ItimerOf(which, p.interval_sec, p.interval_usec, p.value_sec, p.value_usec);
    Itimer h = ItimerOf(which, l.interval_sec, l.interval_usec, l.value_sec, l.value_usec);
    if (h.armed != w.armed || h.interval != w.interval) {
      Diff(who + ": " + names[which] + " " + Describe(h) + ", images say " + Describe(w));
    } else if (h.armed && h.left > std::max(w.left, w.interval) + kSlackUsec) {
      // Running on, it only counts down, or restarts from its interval.
      Diff(who + ": " + names[which] + " has " + Seconds(h.left) + " left, more than the images' " + Seconds(w.left) + " or its interval");
    }
  }
}

void Verifier::CompareThreadState(const images::TaskPlan& t, const images::ThreadPlan& want, pid_t outer, pid_t tid,
                                  const std::string& thread) {
  auto stat = sys::ReadProcFile("/proc/" + Str(outer) + "/task/" + Str(tid) + "/stat");
  auto parsed = stat.ok() ? sys::ParseProcStat(*stat) : Result<sys::ProcStat>(stat.error());
  // A thread the images give no name of its own has its task's.
  std::string name = (want.comm.empty() ? t.comm : want.comm).substr(0, kCommLen);
  if (!parsed.ok()) {
    Diff(thread + ": " + parsed.error().ToString());
  } else if (parsed->comm != name) {
    Diff(thread + ": name (comm) \"" + parsed->comm + "\", images say \"" + name + "\"");
  }
  auto asked = asked_.find(tid);
  if (asked == asked_.end()) return;  // reported by AskTree
  if (asked->second.blocked && *asked->second.blocked != (want.blocked & ~kUnblockable)) {
    Diff(thread + ": blocked signals (SigBlk) " + Hex(*asked->second.blocked) + ", images say " + Hex(want.blocked & ~kUnblockable));
  }
  const sys::ThreadKnobs& k = asked->second.knobs;
  std::string have = Altstack(k.ss_sp, k.ss_size, k.ss_flags);
  std::string images = want.altstack ? Altstack((*want.altstack)[0], (*want.altstack)[1], (*want.altstack)[2]) : "none";
  if (have != images) Diff(thread + ": sigaltstack " + have + ", images say " + images);
}

void Verifier::CompareTaskState() {
  for (const images::TaskPlan& t : plan_.tasks) {
    if (t.kind != images::TaskKind::kAlive || t.resume_mode != images::ResumeMode::kContinue || !t.cont) continue;
    auto it = live_.find(t.pid);
    if (it == live_.end() || it->second.info.state == 'Z') continue;  // reported with the tasks
    const LiveTask& l = it->second;
    const std::string who = "task " + Str(t.pid);
    auto personality = sys::ReadProcFile("/proc/" + Str(l.info.outer) + "/personality");
    if (!personality.ok()) {
      Diff(who + ": " + personality.error().ToString());
    } else if (std::strtoul(personality->c_str(), nullptr, 16) != t.cont->personality) {
      Diff(who + ": personality " + Hex(std::strtoul(personality->c_str(), nullptr, 16)) + ", images say " + Hex(t.cont->personality));
    }
    auto asked = asked_.find(l.info.outer);
    if (asked != asked_.end() && asked->second.task) CompareItimers(*t.cont, *asked->second.task, who);
    for (size_t i = 0; i < t.cont->threads.size(); ++i) {
      const images::ThreadPlan& th = t.cont->threads[i];
      auto o = l.outer_of.find(th.tid);
      if (o == l.outer_of.end()) continue;  // reported with the tasks
      CompareThreadState(t, th, l.info.outer, o->second, i == 0 ? who : who + " thread " + Str(th.tid));
    }
  }
}

}  // namespace ro::verify
