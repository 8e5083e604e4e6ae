// The shared arena every restored task maps: the stage barrier, the abort
// flag with the first error, the task table, facts concerns learn during
// the restore, per-stage timings and fault counters.
//
// One anonymous MAP_SHARED mapping, made by the orchestrator before the
// first clone at the address the plan chose, and inherited by every task
// there: nothing is named, nothing lands in /dev/shm, and it is gone when
// the last task execs or exits. Boost.Interprocess manages the objects inside it; all waiting is
// on atomic words with bounded futex waits, so a task that dies holding
// nothing can never wedge the others (there are no locks to hold).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "shm/faults.h"
#include "shm/stages.h"
#include "sys/mapping.h"
#include "sys/status.h"

namespace ro::shm {

// What a continuing task's restorer failed at (restorer/args.h's Report,
// the same layout), read by the orchestrator when the task is gone.
struct RestorerReport {
  uint32_t step;
  int32_t err;
  uint64_t arg;
  uint32_t injected;  // the pass of an injected fault (--fault mm-restorer:N), 0 otherwise
  uint32_t pad;
};

struct TaskSlot {
  int32_t pid = 0;                          // image pid
  std::atomic<int32_t> outer_pid{0};        // as the orchestrator sees it
  std::atomic<uint32_t> stage{0};           // last stage finished
  std::atomic<uint32_t> group_ready{0};     // futex word: its process group exists
  RestorerReport report{};                  // written by its restorer before it exits
  std::atomic<int32_t> exec_status_fd{-1};  // an exec task's status pipe read end (its fd number), -1: none
  std::atomic<uint32_t> released{0};        // futex word: 1 once it no longer dies with its parent (its hand-over)
};

// What the mounts concern learns about a mount it made (the mount's index
// in the plan's `mounts`), published before the root-task stage ends.
struct MountFact {
  std::atomic<uint32_t> ready{0};  // 1 once `dev` is set
  uint64_t dev = 0;                // st_dev of the new mount's root
};

struct Failure {
  int32_t task = 0;  // image pid, 0 for the orchestrator
  Stage stage = Stage::kNone;
  Error error;
};

class Arena {
 public:
  struct Spec {
    uint64_t address = 0;  // where to map it (MAP_FIXED_NOREPLACE); 0: anywhere
    size_t tasks = 0;      // task slots
    size_t mounts = 0;     // mount facts
    uint64_t deadline_ns = 0;  // CLOCK_MONOTONIC time after which every wait gives up
    std::optional<FaultSpec> fault;
  };
  // Maps and lays out an arena. Errors: the mmap (EEXIST when something is
  // mapped at `address`), or the layout not fitting.
  static Result<Arena> Create(const Spec& spec);
  Arena(Arena&& other) noexcept;
  Arena& operator=(Arena&&) = delete;
  Arena(const Arena&) = delete;
  ~Arena() = default;

  void* base() const { return mapping_.base(); }
  size_t size() const { return mapping_.size(); }
  size_t task_count() const;
  TaskSlot& slot(size_t index);

  // Mounts concern: publishes the device of mount `index` (in the plan's
  // `mounts`), or reads it back (nullopt until published).
  void PublishMountDevice(size_t index, uint64_t dev);
  std::optional<uint64_t> MountDevice(size_t index) const;

  // Orchestrator: opens `stage` for `participants` tasks.
  void BeginStage(Stage stage, uint32_t participants);
  Stage stage() const;
  // Orchestrator: waits up to `timeout_ms` for every participant. True when
  // all finished.
  bool WaitFinished(int timeout_ms) const;
  // Participants of the open stage not done with it yet (the progress line).
  uint32_t pending() const;

  // Task: counts itself done with `stage`, then waits until the orchestrator
  // opens the next one. Fails when the restore aborts or the deadline passes.
  Status FinishStage(size_t index, Stage stage);

  // Task: counts itself done with `stage` without waiting (the last stage).
  void Arrive(size_t index, Stage stage);

  // Task: marks its process group as existing, or waits for the group led by
  // task `leader` to exist (bounded like every wait).
  void MarkGroupReady(size_t index);
  Status WaitGroupReady(size_t leader);

  // Task, at its hand-over: marks that it no longer dies with its parent,
  // or waits (bounded) until task `parent` has marked so. Tasks stop dying
  // with their parents top-down: restore-orch killed at any moment of the
  // hand-over takes all of a tree in its PID namespace with it, or none.
  void MarkReleased(size_t index);
  Status WaitReleased(size_t parent);

  // The first failure wins; later ones are dropped. Wakes every waiter.
  void Abort(int32_t task, Stage stage, const Error& error);
  bool aborted() const;
  // The first failure; once aborted, waits up to 2 s for its task to have
  // written it. nullopt when not aborted, or when that task died first.
  std::optional<Failure> failure() const;

  // Counts a pass through `point`; when it is the pass the caller asked to
  // fail, returns `operation` failing with EIO as if the kernel had said so.
  Status Fault(FaultPoint point, const std::string& operation);

  // The pass --fault asked to fail (0 without a fault).
  uint32_t fault_pass() const;

  void RecordStageTime(Stage stage, uint64_t ns);
  uint64_t StageTime(Stage stage) const;
  uint64_t deadline_ns() const;

 private:
  struct Control;
  Arena(sys::Mapping mapping, Control* control, TaskSlot* slots, size_t count, MountFact* mounts, size_t mount_count);
  Status WaitWord(const std::atomic<uint32_t>& word, uint32_t while_equal, const char* what) const;

  sys::Mapping mapping_;
  Control* control_ = nullptr;
  TaskSlot* slots_ = nullptr;
  size_t count_ = 0;
  MountFact* mounts_ = nullptr;
  size_t mount_count_ = 0;
};

}  // namespace ro::shm
