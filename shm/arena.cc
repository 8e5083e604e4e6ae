#include "shm/arena.h"

#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <cerrno>
#include <cstring>
#include <new>

#include "sys/futex.h"

namespace ro::shm {
namespace bip = boost::interprocess;

namespace {
constexpr int kWaitSliceMs = 100;
constexpr int kFailureWaitMs = 2000;  // how long failure() waits for an aborting task to write its failure
constexpr size_t kWhatBytes = 512;
constexpr size_t kContextBytes = 128;
}  // namespace

struct Arena::Control {
  std::atomic<uint32_t> stage{0};    // futex word: the open stage
  std::atomic<uint32_t> pending{0};  // futex word: participants not done yet
  std::atomic<uint32_t> aborted{0};  // futex word: 1 once a failure is recorded
  std::atomic<uint32_t> failure_ready{0};
  uint64_t deadline_ns = 0;
  // The first failure, written once by whoever wins the abort.
  int32_t fail_task = 0;
  uint32_t fail_stage = 0;
  int32_t fail_errno = 0;
  char fail_what[kWhatBytes] = {};
  char fail_context[kContextBytes] = {};
  std::atomic<uint64_t> stage_ns[kStageCount] = {};
  // The injected fault, if any, and the passes through it so far.
  uint32_t fault_point = static_cast<uint32_t>(FaultPoint::kCount);
  uint32_t fault_pass = 0;
  std::atomic<uint32_t> fault_passes{0};
};

Result<Arena> Arena::Create(const Spec& spec) {
  size_t size = 64 * 1024 + spec.tasks * (sizeof(TaskSlot) + 64) + spec.mounts * (sizeof(MountFact) + 64);
  RO_ASSIGN_OR_RETURN(sys::Mapping mapping, sys::MapSharedAnonymous(size, spec.address));
  try {
    // The segment manager keeps its bookkeeping inside the mapping itself.
    bip::managed_external_buffer segment(bip::create_only, mapping.base(), mapping.size());
    Control* control = segment.construct<Control>("control")();
    TaskSlot* slots = segment.construct<TaskSlot>("tasks")[spec.tasks]();
    MountFact* mounts = segment.construct<MountFact>("mounts")[spec.mounts]();
    control->deadline_ns = spec.deadline_ns;
    if (spec.fault) {
      control->fault_point = static_cast<uint32_t>(spec.fault->point);
      control->fault_pass = spec.fault->pass;
    }
    return Arena(std::move(mapping), control, slots, spec.tasks, mounts, spec.mounts);
  } catch (const bip::interprocess_exception& e) {
    return Fail(std::string("laying out the shared arena: ") + e.what());
  } catch (const std::bad_alloc&) {
    return Fail("laying out the shared arena: out of space for " + std::to_string(spec.tasks) + " tasks");
  }
}

Arena::Arena(sys::Mapping mapping, Control* control, TaskSlot* slots, size_t count, MountFact* mounts, size_t mount_count)
    : mapping_(std::move(mapping)), control_(control), slots_(slots), count_(count), mounts_(mounts), mount_count_(mount_count) {}

Arena::Arena(Arena&& other) noexcept
    : mapping_(std::move(other.mapping_)),
      control_(other.control_),
      slots_(other.slots_),
      count_(other.count_),
      mounts_(other.mounts_),
      mount_count_(other.mount_count_) {}

size_t Arena::task_count() const { return count_; }

void Arena::PublishMountDevice(size_t index, uint64_t dev) {
  if (index >= mount_count_) return;
  mounts_[index].dev = dev;
  mounts_[index].ready.store(1);
}

std::optional<uint64_t> Arena::MountDevice(size_t index) const {
  if (index >= mount_count_ || mounts_[index].ready.load() == 0) return std::nullopt;
  return mounts_[index].dev;
}
TaskSlot& Arena::slot(size_t index) { return slots_[index]; }

void Arena::BeginStage(Stage stage, uint32_t participants) {
  control_->pending.store(participants);
  control_->stage.store(static_cast<uint32_t>(stage));
  sys::FutexWakeAll(control_->stage);
}

Stage Arena::stage() const { return static_cast<Stage>(control_->stage.load()); }

uint32_t Arena::pending() const { return control_->pending.load(); }

bool Arena::WaitFinished(int timeout_ms) const {
  uint32_t left = control_->pending.load();
  if (left == 0) return true;
  sys::FutexWait(control_->pending, left, timeout_ms);
  return control_->pending.load() == 0;
}

Status Arena::WaitWord(const std::atomic<uint32_t>& word, uint32_t while_equal, const char* what) const {
  while (word.load() == while_equal) {
    if (aborted()) return Fail(std::string("gave up waiting for ") + what + ": the restore was aborted");
    if (sys::MonotonicNs() > control_->deadline_ns) return Fail(std::string("timed out waiting for ") + what);
    sys::FutexWait(word, while_equal, kWaitSliceMs);
  }
  return {};
}

void Arena::Arrive(size_t index, Stage stage) {
  slots_[index].stage.store(static_cast<uint32_t>(stage));
  if (control_->pending.fetch_sub(1) == 1) sys::FutexWakeAll(control_->pending);
}

Status Arena::FinishStage(size_t index, Stage stage) {
  Arrive(index, stage);
  RO_TRY(WaitWord(control_->stage, static_cast<uint32_t>(stage), "the other tasks"));
  if (aborted()) return Fail("the restore was aborted");
  return {};
}

void Arena::MarkGroupReady(size_t index) {
  slots_[index].group_ready.store(1);
  sys::FutexWakeAll(slots_[index].group_ready);
}

Status Arena::WaitGroupReady(size_t leader) { return WaitWord(slots_[leader].group_ready, 0, "the process group leader"); }

void Arena::MarkReleased(size_t index) {
  slots_[index].released.store(1);
  sys::FutexWakeAll(slots_[index].released);
}

Status Arena::WaitReleased(size_t parent) { return WaitWord(slots_[parent].released, 0, "the parent's hand-over"); }

void Arena::Abort(int32_t task, Stage stage, const Error& error) {
  uint32_t expected = 0;
  if (control_->aborted.compare_exchange_strong(expected, 1)) {
    control_->fail_task = task;
    control_->fail_stage = static_cast<uint32_t>(stage);
    control_->fail_errno = error.err;
    std::strncpy(control_->fail_what, error.what.c_str(), kWhatBytes - 1);
    std::strncpy(control_->fail_context, error.context.c_str(), kContextBytes - 1);
    control_->failure_ready.store(1);
    sys::FutexWakeAll(control_->failure_ready);
  }
  // Wake every kind of waiter.
  sys::FutexWakeAll(control_->aborted);
  sys::FutexWakeAll(control_->stage);
  sys::FutexWakeAll(control_->pending);
  for (size_t i = 0; i < count_; ++i) {
    sys::FutexWakeAll(slots_[i].group_ready);
    sys::FutexWakeAll(slots_[i].released);
  }
}

bool Arena::aborted() const { return control_->aborted.load() != 0; }

std::optional<Failure> Arena::failure() const {
  // The aborting task may be between claiming the abort and writing its
  // failure (preempted there on a loaded machine): wait for it, bounded,
  // should it have died in between.
  for (int slice = 0; aborted() && control_->failure_ready.load() == 0 && slice < kFailureWaitMs / kWaitSliceMs; ++slice) {
    sys::FutexWait(control_->failure_ready, 0, kWaitSliceMs);
  }
  if (control_->failure_ready.load() == 0) return std::nullopt;
  Failure f;
  f.task = control_->fail_task;
  f.stage = static_cast<Stage>(control_->fail_stage);
  f.error.what = control_->fail_what;
  f.error.context = control_->fail_context;
  f.error.err = control_->fail_errno;
  return f;
}

Status Arena::Fault(FaultPoint point, const std::string& operation) {
  if (control_->fault_point != static_cast<uint32_t>(point)) return {};
  if (control_->fault_passes.fetch_add(1) + 1 != control_->fault_pass) return {};
  return SysError(operation + " [injected fault " + std::string(Describe(point).name) + ":" +
                      std::to_string(control_->fault_pass) + "]",
                  EIO);
}

uint32_t Arena::fault_pass() const { return control_->fault_pass; }

void Arena::RecordStageTime(Stage stage, uint64_t ns) { control_->stage_ns[static_cast<size_t>(stage)].store(ns); }
uint64_t Arena::StageTime(Stage stage) const { return control_->stage_ns[static_cast<size_t>(stage)].load(); }
uint64_t Arena::deadline_ns() const { return control_->deadline_ns; }

}  // namespace ro::shm
