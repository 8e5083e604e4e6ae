#include "test/helpers/tree_images.h"

#include "images/kinds.h"
#include "images/proto/core.pb.h"
#include "images/proto/inventory.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/proto/resume.pb.h"

namespace ro::test {
namespace {

using namespace ro::images;

constexpr uint32_t kOuterPidNs = 1000;
constexpr uint32_t kTreePidNs = 2000;
constexpr uint32_t kMntNs = 3000;

template <class M>
ImageFile One(const Kind& kind, std::unique_ptr<M> m) {
  ImageFile f;
  f.kind = &kind;
  f.entries.push_back(Entry{std::move(m), {}});
  return f;
}

}  // namespace

ImageSet TreeImages(const std::vector<TaskSpec>& tasks, bool shared_pid_ns) {
  ImageSet set;
  auto inv = std::make_unique<img::inventory_entry>();
  inv->set_img_version(2);
  inv->set_fdinfo_per_id(true);
  auto* root_ids = inv->mutable_root_ids();
  root_ids->set_vm_id(0);
  root_ids->set_files_id(0);
  root_ids->set_fs_id(0);
  root_ids->set_sighand_id(0);
  root_ids->set_pid_ns_id(kOuterPidNs);
  root_ids->set_mnt_ns_id(kMntNs);
  set.emplace("inventory.img", One(InventoryKind(), std::move(inv)));

  ImageFile pstree;
  pstree.kind = &PstreeKind();
  uint32_t id = 1;
  for (const TaskSpec& t : tasks) {
    auto e = std::make_unique<img::pstree_entry>();
    e->set_pid(static_cast<uint32_t>(t.pid));
    e->set_ppid(static_cast<uint32_t>(t.ppid));
    e->set_pgid(static_cast<uint32_t>(t.pgid));
    e->set_sid(static_cast<uint32_t>(t.sid));
    e->add_threads(static_cast<uint32_t>(t.pid));
    pstree.entries.push_back(Entry{std::move(e), {}});

    auto core = std::make_unique<img::core_entry>();
    core->set_mtype(img::core_entry::X86_64);
    auto* tc = core->mutable_tc();
    tc->set_task_state(t.zombie ? 2 : 1);
    tc->set_exit_code(t.exit_status);
    tc->set_personality(0);
    tc->set_flags(0);
    tc->set_blk_sigset(0);
    tc->set_comm(t.comm);
    auto* ids = core->mutable_ids();
    ++id;
    ids->set_vm_id(id);
    ids->set_files_id(id);
    ids->set_fs_id(id);
    ids->set_sighand_id(id);
    ids->set_pid_ns_id(shared_pid_ns ? kOuterPidNs : kTreePidNs);
    ids->set_mnt_ns_id(kMntNs);
    set.emplace(MakeFileName(CoreKind(), static_cast<uint32_t>(t.pid)), One(CoreKind(), std::move(core)));

    if (!t.argv.empty()) {
      auto r = std::make_unique<img::resume_entry>();
      r->set_exe(t.argv[0]);
      for (const auto& a : t.argv) r->add_argv(a);
      for (const auto& e2 : t.env) r->add_env(e2);
      if (!t.cwd.empty()) r->set_cwd(t.cwd);
      set.emplace(MakeFileName(ResumeKind(), static_cast<uint32_t>(t.pid)), One(ResumeKind(), std::move(r)));
    }
  }
  set.emplace("pstree.img", std::move(pstree));
  return set;
}

std::vector<TaskSpec> Chain(int depth) {
  std::vector<TaskSpec> tasks;
  for (int i = 1; i <= depth; ++i) {
    tasks.push_back(TaskSpec{.pid = i, .ppid = i - 1, .pgid = i == 1 ? 1 : i, .sid = 1});
  }
  return tasks;
}

std::vector<TaskSpec> Fan(int n) {
  std::vector<TaskSpec> tasks{TaskSpec{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}};
  for (int i = 0; i < n; ++i) tasks.push_back(TaskSpec{.pid = i + 2, .ppid = 1, .pgid = 1, .sid = 1});
  return tasks;
}

}  // namespace ro::test
