#include "test/helpers/tree_images.h"

#include "images/builders.h"
#include "images/kinds.h"
#include "images/proto/autofs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/pipe-data.pb.h"
#include "images/proto/inventory.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/proto/resume.pb.h"
#include "images/proto/seccomp.pb.h"

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

ImageSet TreeImages(const std::vector<TaskSpec>& tasks, bool shared_pid_ns, const std::vector<FileSpec>& files,
                    const std::vector<PipeDataSpec>& data) {
  ImageSet set;
  auto inv = NewInventory(kOuterPidNs, kMntNs);
  set.emplace("inventory.img", One(InventoryKind(), std::move(inv)));

  ImageFile pstree;
  pstree.kind = &PstreeKind();
  auto seccomp = std::make_unique<img::seccomp_entry>();
  uint32_t id = 1;
  for (const TaskSpec& t : tasks) {
    pstree.entries.push_back(Entry{NewPstreeEntry(t.pid, t.ppid, t.pgid, t.sid), {}});

    auto core = std::make_unique<img::core_entry>();
    core->set_mtype(img::core_entry::X86_64);
    auto* tc = core->mutable_tc();
    tc->set_task_state(t.zombie ? 2 : 1);
    tc->set_exit_code(t.exit_status);
    tc->set_personality(0);
    tc->set_flags(0);
    tc->set_blk_sigset(0);
    tc->set_comm(t.comm);
    if (t.seccomp_filters > 0) {
      auto* th = core->mutable_thread_core();
      th->set_futex_rla(0);
      th->set_futex_rla_len(0);
      th->set_seccomp_mode(img::filter);
      th->set_seccomp_filter(static_cast<uint32_t>(seccomp->seccomp_filters_size()));
      for (int k = 0; k < t.seccomp_filters; ++k) {
        auto* f = seccomp->add_seccomp_filters();
        // BPF_RET | BPF_K, SECCOMP_RET_ALLOW
        f->set_filter(std::string("\x06\x00\x00\x00\x00\x00\xff\x7f", 8));
        if (k + 1 < t.seccomp_filters) f->set_prev(static_cast<uint32_t>(seccomp->seccomp_filters_size()));
      }
    }
    auto* ids = core->mutable_ids();
    ++id;
    ids->set_vm_id(id);
    ids->set_files_id(id);
    ids->set_fs_id(id);
    ids->set_sighand_id(id);
    ids->set_pid_ns_id(shared_pid_ns ? kOuterPidNs : kTreePidNs);
    ids->set_mnt_ns_id(kMntNs);
    set.emplace(MakeFileName(CoreKind(), static_cast<uint32_t>(t.pid)), One(CoreKind(), std::move(core)));

    if (!t.fds.empty()) {
      ImageFile fdinfo;
      fdinfo.kind = &FdinfoKind();
      for (const FdSpec& fd : t.fds) {
        auto info = std::make_unique<img::fdinfo_entry>();
        info->set_id(fd.file);
        info->set_flags(fd.cloexec ? 1 : 0);
        info->set_fd(static_cast<uint32_t>(fd.fd));
        for (const FileSpec& f : files) {
          if (f.id == fd.file) info->set_type(f.kind == FileSpec::kPipe ? img::PIPE : f.kind == FileSpec::kFifo ? img::FIFO : img::REG);
        }
        fdinfo.entries.push_back(Entry{std::move(info), {}});
      }
      set.emplace(MakeFileName(FdinfoKind(), id), std::move(fdinfo));
    }

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
  if (seccomp->seccomp_filters_size() > 0) set.emplace("seccomp.img", One(SeccompKind(), std::move(seccomp)));

  if (!files.empty()) {
    ImageFile f;
    f.kind = &FilesKind();
    uint32_t next_path_id = 1u << 30;  // ids of the path entries of FIFOs
    for (const FileSpec& spec : files) {
      if (spec.kind == FileSpec::kRegular) {
        f.entries.push_back(Entry{NewRegularFile(spec.id, spec.path, spec.flags, spec.pos), {}});
      } else if (spec.kind == FileSpec::kPipe) {
        f.entries.push_back(Entry{NewPipe(spec.id, spec.pipe_id, spec.flags), {}});
      } else {
        uint32_t rid = next_path_id++;
        f.entries.push_back(Entry{NewRegularFile(rid, spec.path, spec.flags, 0), {}});
        f.entries.push_back(Entry{NewFifo(spec.id, spec.pipe_id, rid), {}});
      }
    }
    set.emplace("files.img", std::move(f));
  }
  for (bool fifo : {false, true}) {
    ImageFile d;
    d.kind = fifo ? &FifoDataKind() : &PipesDataKind();
    for (const PipeDataSpec& spec : data) {
      if (spec.fifo != fifo) continue;
      auto e = std::make_unique<img::pipe_data_entry>();
      e->set_pipe_id(spec.pipe_id);
      e->set_bytes(static_cast<uint32_t>(spec.data.size()));
      if (spec.capacity != 0) e->set_size(spec.capacity);
      d.entries.push_back(Entry{std::move(e), spec.data});
    }
    if (!d.entries.empty()) set.emplace(MakeFileName(*d.kind), std::move(d));
  }
  return set;
}

void AddMounts(ImageSet& set, const std::vector<MountSpec>& mounts, const std::vector<AutofsSpec>& autofs) {
  constexpr uint32_t kTreeMntNs = 3001;
  for (auto& [name, file] : set) {
    if (file.kind != &CoreKind()) continue;
    static_cast<img::core_entry&>(*file.entries[0].message).mutable_ids()->set_mnt_ns_id(kTreeMntNs);
  }
  ImageFile f;
  f.kind = &MountpointsKind();
  for (const MountSpec& m : mounts) {
    auto e = std::make_unique<img::mnt_entry>();
    e->set_fstype(m.fstype);
    e->set_mnt_id(m.id);
    e->set_root_dev(m.dev);
    e->set_parent_mnt_id(m.parent);
    e->set_flags(m.flags);
    e->set_root(m.root);
    e->set_mountpoint(m.mountpoint);
    e->set_source(m.source);
    e->set_options(m.options);
    e->set_shared_id(m.shared);
    e->set_master_id(m.master);
    e->set_sb_flags(m.sb_flags);
    if (m.external) {
      e->set_ext_mount(true);
      e->set_ext_key(m.ext_key);
    }
    f.entries.push_back(Entry{std::move(e), {}});
  }
  set.insert_or_assign(MakeFileName(MountpointsKind(), kTreeMntNs), std::move(f));
  // A tmpfs root comes with its (empty) contents, as restore-orch's dump
  // writes it: a root mount without them is CRIU's, restored from --root.
  for (const MountSpec& m : mounts) {
    if (m.mountpoint == "/" && m.fstype == 5 && !m.external && !set.count(MakeFileName(TmpfsKind(), m.dev))) {
      AddTmpfsContents(set, m.dev, EmptyTarGz());
    }
  }
  for (const AutofsSpec& a : autofs) {
    auto e = std::make_unique<img::autofs_entry>();
    e->set_fd(a.fd);
    e->set_pgrp(a.pgrp);
    e->set_timeout(a.timeout);
    e->set_minproto(5);
    e->set_maxproto(5);
    e->set_mode(a.mode);
    if (a.read_fd) e->set_read_fd(*a.read_fd);
    set.insert_or_assign(MakeFileName(AutofsKind(), a.dev), One(AutofsKind(), std::move(e)));
  }
}

std::string EmptyTarGz() {
  static const unsigned char kBytes[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xed, 0xc1,
                                         0x01, 0x0d, 0x00, 0x00, 0x00, 0xc2, 0xa0, 0xf7, 0x4f, 0x6d, 0x0e, 0x37,
                                         0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x37,
                                         0x03, 0x9a, 0xde, 0x1d, 0x27, 0x00, 0x28, 0x00, 0x00};
  return std::string(reinterpret_cast<const char*>(kBytes), sizeof(kBytes));
}

void AddTmpfsContents(ImageSet& set, uint32_t dev, const std::string& tar_gz) {
  ImageFile f;
  f.kind = &TmpfsKind();
  f.entries.push_back(Entry{nullptr, tar_gz});
  set.insert_or_assign(MakeFileName(TmpfsKind(), dev), std::move(f));
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
