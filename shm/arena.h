// The shared arena every restored task maps: the stage barrier, the abort
// flag with the first error, the task table and per-stage timings.
//
// One anonymous MAP_SHARED mapping, made by the orchestrator before the
// first clone and inherited by every task at the same address: nothing is
// named, nothing lands in /dev/shm, and it is gone when the last task execs
// or exits. Boost.Interprocess manages the objects inside it; all waiting is
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
#include "sys/status.h"

namespace ro::shm {

// The cross-process stages. A stage ends for all when every participant has
// finished it; what each guarantees once it has ended:
enum class Stage : uint32_t {
  kNone = 0,
  kRootTask,  // the root task runs with its pid in its PID and mount namespaces
  kForking,   // every task and helper exists with its pid, session and process group
  kFiles,     // every task holds exactly its fds, at their numbers, with their flags
  kReaping,   // helpers have exited and were reaped; their children belong to the root
  kResume,    // every task is past its last step that can fail
  kDone,      // tasks exec their programs, stay holders, or exit as zombies
};
inline constexpr size_t kStageCount = 7;
const char* StageName(Stage stage);

struct TaskSlot {
  int32_t pid = 0;                          // image pid
  std::atomic<int32_t> outer_pid{0};        // as the orchestrator sees it
  std::atomic<uint32_t> stage{0};           // last stage finished
  std::atomic<uint32_t> group_ready{0};     // futex word: its process group exists
};

struct Failure {
  int32_t task = 0;  // image pid, 0 for the orchestrator
  Stage stage = Stage::kNone;
  Error error;
};

class Arena {
 public:
  // Maps and lays out an arena for `tasks` task slots; `deadline_ns` is the
  // CLOCK_MONOTONIC time after which every wait gives up.
  static Result<Arena> Create(size_t tasks, uint64_t deadline_ns, std::optional<FaultSpec> fault = std::nullopt);
  Arena(Arena&& other) noexcept;
  Arena& operator=(Arena&&) = delete;
  Arena(const Arena&) = delete;
  ~Arena();

  size_t task_count() const;
  TaskSlot& slot(size_t index);

  // Orchestrator: opens `stage` for `participants` tasks.
  void BeginStage(Stage stage, uint32_t participants);
  Stage stage() const;
  // Orchestrator: waits up to `timeout_ms` for every participant. True when
  // all finished.
  bool WaitFinished(int timeout_ms) const;

  // Task: counts itself done with `stage`, then waits until the orchestrator
  // opens the next one. Fails when the restore aborts or the deadline passes.
  Status FinishStage(size_t index, Stage stage);

  // Task: counts itself done with `stage` without waiting (the last stage).
  void Arrive(size_t index, Stage stage);

  // Task: marks its process group as existing, or waits for the group led by
  // task `leader` to exist (bounded like every wait).
  void MarkGroupReady(size_t index);
  Status WaitGroupReady(size_t leader);

  // The first failure wins; later ones are dropped. Wakes every waiter.
  void Abort(int32_t task, Stage stage, const Error& error);
  bool aborted() const;
  std::optional<Failure> failure() const;

  // Counts a pass through `point`; when it is the pass the caller asked to
  // fail, returns `operation` failing with EIO as if the kernel had said so.
  Status Fault(FaultPoint point, const std::string& operation);

  void RecordStageTime(Stage stage, uint64_t ns);
  uint64_t StageTime(Stage stage) const;
  uint64_t deadline_ns() const;

 private:
  struct Control;
  Arena(void* base, size_t size, Control* control, TaskSlot* slots, size_t count);
  Status WaitWord(const std::atomic<uint32_t>& word, uint32_t while_equal, const char* what) const;

  void* base_ = nullptr;
  size_t size_ = 0;
  Control* control_ = nullptr;
  TaskSlot* slots_ = nullptr;
  size_t count_ = 0;
};

}  // namespace ro::shm
