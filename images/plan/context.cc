#include "images/plan/context.h"

#include <algorithm>
#include <cstdio>

namespace ro::images::plan {

void Problems::Add(const std::string& file, std::optional<size_t> entry, std::string what) {
  Error e = Fail(std::move(what));
  e.context = entry ? file + ": entry " + Str(*entry) : file;
  errors_.push_back(std::move(e));
}

const img::core_entry* Context::Core(pid_t pid) const {
  const ImageFile* f = dir.Find(CoreKind(), static_cast<uint32_t>(pid));
  return f != nullptr ? &f->As<img::core_entry>(0) : nullptr;
}

std::string Str(uint64_t v) { return std::to_string(v); }

std::string HexStr(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%x", v);
  return buf;
}

std::string OctStr(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%o", v);
  return buf;
}

}  // namespace ro::images::plan

namespace ro::images {

const TaskPlan* RestorePlan::FindTask(pid_t pid) const {
  int i = IndexOf(pid);
  return i < 0 ? nullptr : &tasks[static_cast<size_t>(i)];
}

int RestorePlan::IndexOf(pid_t pid) const {
  auto it = index.find(pid);
  return it == index.end() ? -1 : it->second;
}

const MountPlan* RestorePlan::FindMount(uint32_t mnt_id) const {
  int i = MountIndex(mnt_id);
  return i < 0 ? nullptr : &mounts[static_cast<size_t>(i)];
}

bool RestorePlan::MasterOutside(const MountPlan& m) const {
  return m.master_id != 0 && std::none_of(mounts.begin(), mounts.end(), [&](const MountPlan& o) { return o.shared_id == m.master_id; });
}

int RestorePlan::MountIndex(uint32_t mnt_id) const {
  for (size_t i = 0; i < mounts.size(); ++i) {
    if (mounts[i].mnt_id == mnt_id) return static_cast<int>(i);
  }
  return -1;
}

const PipeDataPlan* RestorePlan::PipeData(bool fifo, uint32_t pipe_id) const {
  auto it = pipe_data_index.find({fifo, pipe_id});
  return it == pipe_data_index.end() ? nullptr : &pipe_data[it->second];
}

size_t RestorePlan::CountFds() const {
  size_t n = 0;
  for (const TaskPlan& t : tasks) n += t.fds.size();
  return n;
}

}  // namespace ro::images
