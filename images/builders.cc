#include "images/builders.h"

#include "images/proto/fifo.pb.h"
#include "images/proto/pipe.pb.h"
#include "images/proto/regfile.pb.h"

namespace ro::images {
namespace {

void NoOwner(img::fown_entry* o) {
  o->set_uid(0);
  o->set_euid(0);
  o->set_signum(0);
  o->set_pid_type(0);
  o->set_pid(0);
}

}  // namespace

std::unique_ptr<img::inventory_entry> NewInventory(uint32_t pid_ns_id, uint32_t mnt_ns_id) {
  auto inv = std::make_unique<img::inventory_entry>();
  inv->set_img_version(2);
  inv->set_fdinfo_per_id(true);
  auto* ids = inv->mutable_root_ids();
  ids->set_vm_id(0);
  ids->set_files_id(0);
  ids->set_fs_id(0);
  ids->set_sighand_id(0);
  ids->set_pid_ns_id(pid_ns_id);
  ids->set_mnt_ns_id(mnt_ns_id);
  return inv;
}

std::unique_ptr<img::pstree_entry> NewPstreeEntry(int32_t pid, int32_t ppid, int32_t pgid, int32_t sid) {
  auto e = std::make_unique<img::pstree_entry>();
  e->set_pid(static_cast<uint32_t>(pid));
  e->set_ppid(static_cast<uint32_t>(ppid));
  e->set_pgid(static_cast<uint32_t>(pgid));
  e->set_sid(static_cast<uint32_t>(sid));
  e->add_threads(static_cast<uint32_t>(pid));
  return e;
}

std::unique_ptr<img::file_entry> NewRegularFile(uint32_t id, const std::string& path, uint32_t flags, uint64_t pos,
                                                uint32_t mnt_id) {
  auto e = std::make_unique<img::file_entry>();
  e->set_type(img::REG);
  e->set_id(id);
  auto* r = e->mutable_reg();
  r->set_id(id);
  r->set_flags(flags);
  r->set_pos(pos);
  r->set_name(path);
  if (mnt_id != 0) r->set_mnt_id(static_cast<int32_t>(mnt_id));
  NoOwner(r->mutable_fown());
  return e;
}

std::unique_ptr<img::file_entry> NewPipe(uint32_t id, uint32_t pipe_id, uint32_t flags) {
  auto e = std::make_unique<img::file_entry>();
  e->set_type(img::PIPE);
  e->set_id(id);
  auto* p = e->mutable_pipe();
  p->set_id(id);
  p->set_pipe_id(pipe_id);
  p->set_flags(flags);
  NoOwner(p->mutable_fown());
  return e;
}

std::unique_ptr<img::file_entry> NewFifo(uint32_t id, uint32_t pipe_id, uint32_t path_id) {
  auto e = std::make_unique<img::file_entry>();
  e->set_type(img::FIFO);
  e->set_id(id);
  auto* f = e->mutable_fifo();
  f->set_id(id);
  f->set_pipe_id(pipe_id);
  f->set_regf_id(path_id);
  return e;
}

}  // namespace ro::images
