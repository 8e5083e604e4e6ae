#include "images/show.h"

#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <map>

#include "images/filesystems.h"
#include "images/proto/autofs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/netdev.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/proto/utsns.pb.h"
#include "sys/netlink.h"

namespace ro::images {
namespace {

// Two spaces a level, up to 32 levels; deeper ones say their depth instead,
// so that a deep tree's listing grows linearly with its size.
std::string Indent(int depth) {
  if (depth <= 32) return std::string(static_cast<size_t>(depth) * 2 + 2, ' ');
  return std::string(66, ' ') + "[" + std::to_string(depth) + "] ";
}

std::string Propagation(const img::mnt_entry& m) {
  std::string s;
  if (m.shared_id() != 0) s += fmt::format(" shared:{}", m.shared_id());
  if (m.master_id() != 0) s += fmt::format(" master:{}", m.master_id());
  if (m.flags() & (1u << 17)) s += " unbindable";  // MS_UNBINDABLE
  return s.empty() ? " private" : s;
}

std::string DescribeFile(const img::file_entry& f, const std::map<uint32_t, const img::file_entry*>& files) {
  switch (f.type()) {
    case img::PIPE:
      return fmt::format("pipe:[{}] {}", f.pipe().pipe_id(), (f.pipe().flags() & 3) == 1 ? "write" : "read");
    case img::REG:
      return fmt::format("{} flags 0{:o} pos {}", f.reg().name(), f.reg().flags(), f.reg().pos());
    case img::FIFO: {
      auto it = files.find(f.fifo().regf_id());
      return fmt::format("fifo {}", it != files.end() && it->second->has_reg() ? it->second->reg().name() : "?");
    }
    default:
      return img::fd_types_Name(f.type());
  }
}

// The namespaces of the tree's own that the images hold: a UTS
// namespace's names, an IPC namespace's objects, a network namespace's
// links, sysctl entries and addresses.
void ShowNamespaces(const ImageDir& dir, const std::function<void(std::string)>& line) {
  bool any = false;
  auto header = [&] {
    if (!any) line("namespaces of the tree's own:");
    any = true;
  };
  for (const auto& [name, file] : dir.files) {
    const std::string_view kind = file.kind->name;
    if (kind == "UTSNS" && !file.entries.empty()) {
      header();
      const auto& e = file.As<img::utsns_entry>(0);
      line(fmt::format("  UTS ({}): hostname \"{}\", domainname \"{}\"", name, e.nodename(), e.domainname()));
    } else if (kind == "IPC_VAR") {
      header();
      std::string counts;
      for (const char* k : {"IPCNS_SHM", "IPCNS_MSG", "IPCNS_SEM"}) {
        const std::string objects = MakeFileName(*KindByName(k), ParseFileName(name)->key);
        const ImageFile* f = dir.Find(*KindByName(k), ParseFileName(name)->key);
        counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", f == nullptr ? 0 : f->entries.size(), objects);
      }
      line(fmt::format("  IPC ({}): {}", name, counts));
    } else if (kind == "NETNS" && !file.entries.empty()) {
      header();
      const auto& e = file.As<img::netns_entry>(0);
      line(fmt::format("  network ({}): {} IPv4 and {} IPv6 sysctl entries of all and default, {} of unix", name,
                       e.all_conf4_size() + e.def_conf4_size(), e.all_conf6_size() + e.def_conf6_size(), e.unix_conf_size()));
      const std::optional<uint64_t> key = ParseFileName(name)->key;
      if (const ImageFile* devs = dir.Find(NetdevKind(), key)) {
        for (size_t i = 0; i < devs->entries.size(); ++i) {
          const auto& d = devs->As<img::net_device_entry>(i);
          line(fmt::format("    link {} {} ({}) mtu {} flags {:#x}", d.ifindex(), d.name(), img::nd_type_Name(d.type()), d.mtu(), d.flags()));
        }
      }
      const ImageFile* ifaddr = dir.Find(IfaddrKind(), key);
      if (ifaddr == nullptr || ifaddr->entries.empty()) continue;
      const Entry& raw = ifaddr->entries[0];
      auto bytes = raw.ref ? ReadWholeFile(dir.path + "/" + raw.ref->file, 16 << 20) : Result<std::string>(raw.payload);
      uint32_t magic = 0;
      if (bytes.ok() && bytes->size() >= 4) std::memcpy(&magic, bytes->data(), 4);
      auto messages = !bytes.ok()                  ? Result<std::vector<std::string>>(bytes.error())
                      : magic != kIpAddrSaveMagic ? Result<std::vector<std::string>>(Fail("no `ip addr save` magic"))
                                                  : sys::SplitMessages(bytes->substr(4));
      if (!messages.ok()) {
        line("    addresses: " + MakeFileName(IfaddrKind(), key) + " cannot be read: " + messages.error().what);
        continue;
      }
      for (const std::string& m : *messages) {
        auto a = sys::ParseAddressMessage(m.data(), m.size());
        line(a.ok() ? fmt::format("    address {} on link {} scope {}{}", a->Text(), a->ifindex, a->scope, a->label.empty() ? "" : " label " + a->label)
                    : "    address: " + a.error().what);
      }
    }
  }
}

}  // namespace

std::string ShowImageDir(const ImageDir& dir) {
  std::string out;
  auto line = [&out](std::string s) {
    out += s;
    out += '\n';
  };
  line("image directory " + dir.path);
  for (const std::string& u : dir.unsupported) line("  unsupported image: " + u);

  std::map<uint32_t, const img::file_entry*> files;
  if (const ImageFile* f = dir.Find(FilesKind())) {
    for (size_t i = 0; i < f->entries.size(); ++i) {
      const auto& e = f->As<img::file_entry>(i);
      files[e.id()] = &e;
    }
  }

  line("process tree:");
  const ImageFile* pstree = dir.Find(PstreeKind());
  std::map<uint32_t, std::vector<const img::pstree_entry*>> children;
  std::vector<const img::pstree_entry*> roots;
  if (pstree != nullptr) {
    std::map<uint32_t, bool> present;
    for (size_t i = 0; i < pstree->entries.size(); ++i) present[pstree->As<img::pstree_entry>(i).pid()] = true;
    for (size_t i = 0; i < pstree->entries.size(); ++i) {
      const auto& e = pstree->As<img::pstree_entry>(i);
      if (e.ppid() == 0 || !present.count(e.ppid())) {
        roots.push_back(&e);
      } else {
        children[e.ppid()].push_back(&e);
      }
    }
  }
  std::map<uint32_t, bool> shown;
  auto show_task = [&](const img::pstree_entry& e, int depth) {
    if (shown[e.pid()]) return false;  // a cycle in a broken image
    shown[e.pid()] = true;
    std::string state, comm;
    const img::task_kobj_ids_entry* ids = nullptr;
    if (const ImageFile* core = dir.Find(CoreKind(), e.pid())) {
      const auto& c = core->As<img::core_entry>(0);
      if (c.has_tc()) {
        comm = c.tc().comm();
        state = c.tc().task_state() == 2 ? fmt::format(" zombie(status {:#x})", c.tc().exit_code()) : "";
      }
      if (c.has_ids()) ids = &c.ids();
    }
    if (ids == nullptr) {
      if (const ImageFile* f = dir.Find(IdsKind(), e.pid())) ids = &f->As<img::task_kobj_ids_entry>(0);
    }
    std::string indent = Indent(depth);
    std::string threads;
    if (e.threads_size() > 1 && state.empty()) {
      threads = ", threads";
      for (uint32_t tid : e.threads()) threads += fmt::format(" {}", tid);
    }
    line(fmt::format("{}{} \"{}\" pgid {} sid {}{}{}", indent, e.pid(), comm, e.pgid(), e.sid(), state, threads));
    if (ids != nullptr) {
      if (const ImageFile* fdinfo = dir.Find(FdinfoKind(), ids->files_id())) {
        for (size_t i = 0; i < fdinfo->entries.size(); ++i) {
          const auto& fd = fdinfo->As<img::fdinfo_entry>(i);
          auto it = files.find(fd.id());
          line(fmt::format("{}  fd {} -> {}{}", indent, fd.fd(), it != files.end() ? DescribeFile(*it->second, files) : "missing file",
                           (fd.flags() & 1) ? " cloexec" : ""));
        }
      }
    }
    return true;
  };
  // Depth first without recursion: an image decides how deep a tree goes.
  for (const auto* r : roots) {
    std::vector<std::pair<const img::pstree_entry*, int>> stack{{r, 0}};
    while (!stack.empty()) {
      auto [e, depth] = stack.back();
      stack.pop_back();
      if (!show_task(*e, depth)) continue;
      const auto& kids = children[e->pid()];
      for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.emplace_back(*it, depth + 1);
    }
  }

  for (const auto& [name, file] : dir.files) {
    if (file.kind != &MountpointsKind()) continue;
    line("mount tree (" + name + "):");
    std::map<uint32_t, std::vector<const img::mnt_entry*>> kids;
    std::map<uint32_t, bool> present;
    for (size_t i = 0; i < file.entries.size(); ++i) present[file.As<img::mnt_entry>(i).mnt_id()] = true;
    std::vector<const img::mnt_entry*> tops;
    for (size_t i = 0; i < file.entries.size(); ++i) {
      const auto& m = file.As<img::mnt_entry>(i);
      if (present.count(m.parent_mnt_id()) && m.parent_mnt_id() != m.mnt_id()) {
        kids[m.parent_mnt_id()].push_back(&m);
      } else {
        tops.push_back(&m);
      }
    }
    std::map<uint32_t, bool> seen;
    auto show_mount = [&](const img::mnt_entry& m, int depth) {
      if (seen[m.mnt_id()]) return false;
      seen[m.mnt_id()] = true;
      std::string fstype = m.fstype() == img::AUTO && m.has_fsname() ? m.fsname() : FstypeName(m.fstype());
      line(fmt::format("{}{} {} {} root {} source \"{}\"{}", Indent(depth),
                       m.mnt_id(), m.mountpoint(), fstype, m.root(), m.source(), Propagation(m)));
      if (m.fstype() == img::AUTOFS) {
        if (const ImageFile* a = dir.Find(AutofsKind(), m.root_dev())) {
          const auto& e = a->As<img::autofs_entry>(0);
          const char* mode = e.mode() == 0 ? "direct" : e.mode() == 1 ? "indirect" : e.mode() == 2 ? "offset" : "?";
          if (e.fd() == -1) {
            line(fmt::format("{}  autofs {} catatonic", Indent(depth), mode));
          } else {
            line(fmt::format("{}  autofs {} master {} fd {}{} timeout {}s", Indent(depth),
                             mode, e.pgrp(), e.fd(), e.has_read_fd() ? fmt::format(" (write end closed; read end fd {})", e.read_fd()) : "",
                             e.timeout()));
          }
        } else {
          line(fmt::format("{}  autofs: no autofs-{}.img", Indent(depth), m.root_dev()));
        }
      }
      return true;
    };
    for (const auto* t : tops) {
      std::vector<std::pair<const img::mnt_entry*, int>> stack{{t, 0}};
      while (!stack.empty()) {
        auto [m, depth] = stack.back();
        stack.pop_back();
        if (!show_mount(*m, depth)) continue;
        const auto& below = kids[m->mnt_id()];
        for (auto it = below.rbegin(); it != below.rend(); ++it) stack.emplace_back(*it, depth + 1);
      }
    }
  }
  ShowNamespaces(dir, line);
  return out;
}

}  // namespace ro::images
