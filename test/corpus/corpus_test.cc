// Broken image directories: each is written to disk, handed to the real
// binary with --dry-run, and must be refused with exit status 2 and a line
// that names the file, the entry and the problem. The sanitizer build runs
// the same cases.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>

#include "images/proto/autofs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/fs.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/pipe-data.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/proto/resume.pb.h"
#include "images/proto/seccomp.pb.h"
#include "test/corpus/corpus.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

using namespace ro::images;

constexpr const char* kMounts = "mountpoints-4026532101.img";

// --dry-run of DIR with a source for each external mount of the demo set.
std::vector<std::string> DryRun(const TempDir& dir, const std::string& extra = "") {
  std::vector<std::string> cmd = {RestoreOrch(), "--images", dir.path(), "--dry-run", "--external", "dev=/dev", "--external", "usr=/usr",
                                  "--external", "lib=/usr/lib", "--external", "lib64=/usr/lib64", "--external", "srv=/tmp"};
  if (!extra.empty()) cmd.push_back(extra);
  return cmd;
}

std::string U32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

img::pstree_entry& Task(ImageSet& s, size_t i) { return Mutable<img::pstree_entry>(s, "pstree.img", i); }
img::mnt_entry& Mount(ImageSet& s, size_t i) { return Mutable<img::mnt_entry>(s, kMounts, i); }

void AddFd(ImageSet& s, const std::string& file, uint32_t id, img::fd_types type, uint32_t fd) {
  auto m = std::make_unique<img::fdinfo_entry>();
  m->set_id(id);
  m->set_flags(0);
  m->set_type(type);
  m->set_fd(fd);
  s.at(file).entries.push_back(Entry{std::move(m), {}});
}

std::vector<Case> Cases() {
  std::vector<Case> c;
  auto edit = [&c](std::string name, std::function<void(ImageSet&)> f, std::string expect) {
    c.push_back({std::move(name), std::move(f), nullptr, std::move(expect)});
  };
  auto damage = [&c](std::string name, std::function<void(const TempDir&)> f, std::string expect) {
    c.push_back({std::move(name), nullptr, std::move(f), std::move(expect)});
  };

  // Framing.
  damage("truncated_size_word", [](const TempDir& d) { d.Write("pstree.img", d.Read("pstree.img") + std::string("\x07\x00", 2)); },
         "pstree.img: entry 5: truncated size word (2 of 4 bytes)");
  damage("truncated_payload", [](const TempDir& d) {
           std::string b = d.Read("pipes-data.img");
           d.Write("pipes-data.img", b.substr(0, b.size() - 1));
         }, "pipes-data.img: entry 1: truncated payload: 11 of 12 bytes");
  damage("truncated_entry", [](const TempDir& d) {
           std::string b = d.Read("core-1.img");
           d.Write("core-1.img", b.substr(0, b.size() - 3));
         }, "core-1.img: entry 0: truncated entry");
  damage("wrong_head_magic", [](const TempDir& d) {
           std::string b = d.Read("files.img");
           b[0] ^= 0x55;
           d.Write("files.img", b);
         }, "files.img: header: head magic");
  damage("wrong_type_magic", [](const TempDir& d) { d.Write("pstree.img", d.Read("core-2.img")); },
         "pstree.img: header: type magic 0x55053847 is not PSTREE's 0x50273030");
  damage("empty_file", [](const TempDir& d) { d.Write("inventory.img", ""); },
         "inventory.img: header: file is too short to hold a magic");
  damage("entry_over_size_limit", [](const TempDir& d) {
           d.Write("fdinfo-13.img", U32(0x54564319) + U32(0x56213732) + U32(0x7fffffff) + "xx");
         }, "fdinfo-13.img: entry 0: entry size 2147483647 exceeds the limit");
  damage("payload_over_limit", [](const TempDir& d) {
           img::pipe_data_entry e;
           e.set_pipe_id(70001);
           e.set_bytes(0xffffffff);
           std::string body = e.SerializeAsString();
           d.Write("pipes-data.img", U32(0x54564319) + U32(0x56453709) + U32(uint32_t(body.size())) + body);
         }, "pipes-data.img: entry 0: payload of 4294967295 bytes exceeds the limit");
  damage("missing_required_field", [](const TempDir& d) {
           img::pstree_entry e;
           e.set_pid(1);
           e.set_ppid(0);
           e.set_pgid(1);  // no sid
           std::string body = e.SerializePartialAsString();
           d.Write("pstree.img", U32(0x54564319) + U32(0x50273030) + U32(uint32_t(body.size())) + body);
         }, "pstree.img: entry 0: missing required field(s): sid");
  damage("malformed_protobuf", [](const TempDir& d) {
           d.Write("ids-4.img", U32(0x54564319) + U32(0x54432030) + U32(3) + "\xff\xff\xff");
         }, "ids-4.img: entry 0: malformed protobuf");
  damage("symlinked_image", [](const TempDir& d) {
           ::unlink(d.File("pstree.img").c_str());
           ASSERT_EQ(::symlink("/etc/passwd", d.File("pstree.img").c_str()), 0);
         }, "open pstree.img: Too many levels of symbolic links");
  damage("fifo_instead_of_file", [](const TempDir& d) {
           ::unlink(d.File("core-2.img").c_str());
           ASSERT_EQ(::mkfifo(d.File("core-2.img").c_str(), 0600), 0);
         }, "core-2.img is not a regular file");
  damage("unsupported_kind", [](const TempDir& d) { d.Write("tty.img", std::string(64, '\0')); },
         "tty.img: image kind not supported by restore-orch");
  damage("missing_inventory", [](const TempDir& d) { ::unlink(d.File("inventory.img").c_str()); },
         "inventory.img: missing: not an image directory");
  damage("missing_core", [](const TempDir& d) { ::unlink(d.File("core-3.img").c_str()); },
         "core-3.img: missing: every task of pstree.img needs its core image");

  // Process tree.
  edit("dangling_ppid", [](ImageSet& s) { Task(s, 3).set_ppid(42); }, "pstree.img: entry 3: ppid 42 of task 4 names no task");
  edit("duplicate_pid", [](ImageSet& s) { Task(s, 3).set_pid(3); }, "pstree.img: entry 3: duplicate pid 3 (also entry 2)");
  edit("ppid_cycle", [](ImageSet& s) { Task(s, 2).set_ppid(4); }, "task 3 is not below the root task: its ppid chain is a cycle");
  edit("no_root", [](ImageSet& s) { Task(s, 0).set_ppid(5); }, "pstree.img: no root task (no entry with ppid 0)");
  edit("second_root", [](ImageSet& s) { Task(s, 1).set_ppid(0); }, "pstree.img: entry 1: second root task 2");
  edit("pid_zero", [](ImageSet& s) { Task(s, 4).set_pid(0); }, "pstree.img: entry 4: pid 0 is out of range");
  edit("threads", [](ImageSet& s) { Task(s, 2).add_threads(33); }, "multi-threaded tasks are not supported");
  edit("session_leader_not_group_leader", [](ImageSet& s) { Task(s, 1).set_pgid(1); },
       "pstree.img: entry 1: session leader 2 has pgid 1");
  edit("group_spans_sessions", [](ImageSet& s) { Task(s, 3).set_sid(2); },
       "process group 3 spans two sessions");
  edit("pid_of_session_outside_it", [](ImageSet& s) {
         Task(s, 3).set_sid(3);
         Task(s, 3).set_pgid(4);
       }, "task 3 is in session 1 but session 3 bears its pid");
  edit("group_of_session_id_elsewhere", [](ImageSet& s) {
         Task(s, 3).set_pgid(2);  // group 2 is session 2's, task 4 is in session 1
       }, "process group 2 spans two sessions");
  edit("zombie_with_children", [](ImageSet& s) {
         Mutable<img::core_entry>(s, "core-3.img").mutable_tc()->set_task_state(2);
       }, "core-3.img: entry 0: zombie 3 has children");
  edit("zombie_stopped_not_dead", [](ImageSet& s) {
         Mutable<img::core_entry>(s, "core-5.img").mutable_tc()->set_exit_code(0x137f);  // stopped by SIGSTOP
       }, "core-5.img: entry 0: exit_code 137f is not the wait status");
  edit("zombie_killed_by_sigchld", [](ImageSet& s) {
         Mutable<img::core_entry>(s, "core-5.img").mutable_tc()->set_exit_code(SIGCHLD);
       }, "core-5.img: entry 0: exit_code 11 is not the wait status");
  edit("bad_task_state", [](ImageSet& s) { Mutable<img::core_entry>(s, "core-2.img").mutable_tc()->set_task_state(9); },
       "core-2.img: entry 0: task_state 9 is not alive");
  edit("root_not_pid_1", [](ImageSet& s) {
         // Renumber nothing else: the root keeps its children but is pid 77.
         Task(s, 0).set_pid(77);
         Task(s, 0).set_pgid(77);
         Task(s, 0).set_sid(77);
       }, "ppid 1 of task 2 names no task");

  // Files.
  edit("fd_to_missing_file", [](ImageSet& s) { Mutable<img::fdinfo_entry>(s, "fdinfo-13.img").set_id(99); },
       "fdinfo-13.img: entry 0: task 3 fd 11: file id 99 is missing from files.img");
  edit("two_fds_one_number", [](ImageSet& s) { AddFd(s, "fdinfo-12.img", 2, img::PIPE, 4); },
       "fdinfo-12.img: entry 3: task 2 fd 4: two fds with one number (also entry 1)");
  edit("fd_type_mismatch", [](ImageSet& s) { AddFd(s, "fdinfo-11.img", 1, img::REG, 7); },
       "task 1 fd 7: fdinfo says REG but files.img entry 0 is PIPE");
  edit("unsupported_fd_kind", [](ImageSet& s) {
         auto m = std::make_unique<img::file_entry>();
         m->set_type(img::UNIXSK);
         m->set_id(50);
         s.at("files.img").entries.push_back(Entry{std::move(m), {}});
         AddFd(s, "fdinfo-11.img", 50, img::UNIXSK, 3);
       }, "fdinfo-11.img: entry 3: task 1 fd 3: UNIXSK files are not supported");
  edit("fd_flags_beyond_cloexec", [](ImageSet& s) { Mutable<img::fdinfo_entry>(s, "fdinfo-13.img").set_flags(0x80); },
       "task 3 fd 11: fd flags 0x80 hold more than FD_CLOEXEC");
  edit("fd_number_too_big", [](ImageSet& s) { Mutable<img::fdinfo_entry>(s, "fdinfo-13.img").set_fd(1u << 20); },
       "task 3 fd 1048576: fd number above the kernel's limit");
  edit("reg_without_reg_entry", [](ImageSet& s) { Mutable<img::file_entry>(s, "files.img", 4).clear_reg(); },
       "files.img: entry 4: REG file 5 has no reg entry");
  edit("relative_file_path", [](ImageSet& s) {
         Mutable<img::file_entry>(s, "files.img", 4).mutable_reg()->set_name("../../etc/shadow");
       }, "files.img: entry 4: path \"../../etc/shadow\" is not absolute or contains \"..\"");
  edit("pipe_opened_rdwr", [](ImageSet& s) { Mutable<img::file_entry>(s, "files.img", 0).mutable_pipe()->set_flags(2); },
       "pipe 70001 end opened neither read-only nor write-only");
  edit("pipe_data_over_capacity", [](ImageSet& s) {
         auto& f = s.at("pipes-data.img");
         static_cast<img::pipe_data_entry&>(*f.entries[1].message).set_size(4096);
         static_cast<img::pipe_data_entry&>(*f.entries[1].message).set_bytes(5000);
         f.entries[1].payload.assign(5000, 'x');
       }, "pipes-data.img: entry 1: pipe 70002 holds 5000 bytes, more than its capacity 4096");
  edit("pipe_capacity_not_power_of_two", [](ImageSet& s) {
         static_cast<img::pipe_data_entry&>(*s.at("pipes-data.img").entries[0].message).set_size(5000);
       }, "pipes-data.img: entry 0: pipe capacity 5000 is not a power of two");
  edit("pipe_data_for_unknown_pipe", [](ImageSet& s) {
         static_cast<img::pipe_data_entry&>(*s.at("pipes-data.img").entries[0].message).set_pipe_id(123);
       }, "pipes-data.img: entry 0: data for pipe 123 which no file entry names");
  edit("cwd_not_a_regular_file", [](ImageSet& s) { Mutable<img::fs_entry>(s, "fs-1.img").set_cwd_id(1); },
       "fs-1.img: entry 0: cwd of task 1 names file 1, which is no regular file entry");
  edit("seccomp_filter_bad_length", [](ImageSet& s) {
         Mutable<img::seccomp_entry>(s, "seccomp.img").mutable_seccomp_filters(0)->set_filter("1234567");
       }, "seccomp.img: entry 0: seccomp filter 0 is 7 bytes");
  edit("seccomp_chain_loop", [](ImageSet& s) {
         Mutable<img::seccomp_entry>(s, "seccomp.img").mutable_seccomp_filters(0)->set_prev(0);
       }, "seccomp filter chain of task 3 loops at filter 0");

  // Mounts.
  edit("mountpoint_dotdot", [](ImageSet& s) { Mount(s, 1).set_mountpoint("/proc/../../etc"); },
       "mountpoints-4026532101.img: entry 1: mountpoint \"/proc/../../etc\" is not absolute or contains \"..\"");
  edit("mount_root_removed", [](ImageSet& s) { Mount(s, 2).set_root("/gone//deleted"); },
       "entry 2: root \"/gone//deleted\" was removed before the dump: a bind of it cannot be restored");
  edit("mountpoint_relative", [](ImageSet& s) { Mount(s, 2).set_mountpoint("shared"); },
       "entry 2: mountpoint \"shared\" is not absolute");
  edit("mount_parent_missing", [](ImageSet& s) { Mount(s, 3).set_parent_mnt_id(999); },
       "entry 3: parent mount 999 of mount 103 is missing");
  edit("mount_not_below_parent", [](ImageSet& s) { Mount(s, 1).set_parent_mnt_id(102); },
       "entry 1: mountpoint /proc is not below its parent's /shared");
  edit("mount_cycle", [](ImageSet& s) {
         // Two overmounts of one path, each the other's parent.
         Mount(s, 2).set_parent_mnt_id(103);
         Mount(s, 3).set_parent_mnt_id(102);
         Mount(s, 3).set_mountpoint("/shared");
       }, "entry 2: mount 102 is not below the root mount: its parent chain is a cycle");
  edit("duplicate_mnt_id", [](ImageSet& s) { Mount(s, 4).set_mnt_id(103); }, "entry 4: duplicate mnt_id 103");
  edit("unsupported_fstype", [](ImageSet& s) { Mount(s, 1).set_fstype(img::FUSE); },
       "entry 1: filesystem fuse (fstype 15) at /proc is not supported");
  edit("own_master", [](ImageSet& s) { Mount(s, 2).set_master_id(1); },
       "entry 2: mount 102 is its own master");
  edit("peers_with_different_masters", [](ImageSet& s) { Mount(s, 3).set_master_id(5); },
       "peer group 1 has members with different masters");
  edit("master_cycle", [](ImageSet& s) {
         Mount(s, 2).set_master_id(2);
         Mount(s, 3).set_master_id(2);
         Mount(s, 4).set_shared_id(2);
       }, "sharing groups form a master cycle");

  // AutoFS.
  edit("autofs_master_not_in_tree", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-43.img").set_pgrp(77); },
       "autofs-43.img: entry 0: master (pgrp 77) of AutoFS mount /auto is not a live task of the tree");
  edit("autofs_master_zombie", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-43.img").set_pgrp(5); },
       "master (pgrp 5) of AutoFS mount /auto is not a live task");
  edit("autofs_no_pipe_at_fd", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-43.img").set_fd(9); },
       "autofs-43.img: entry 0: master 2 holds no pipe write end at fd 9 for AutoFS mount /auto");
  edit("autofs_read_fd_not_a_read_end", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-43.img").set_read_fd(5); },
       "master 2 holds no pipe read end at fd 5");
  edit("autofs_image_missing", [](ImageSet& s) { s.erase("autofs-43.img"); },
       "entry 5: AutoFS mount /auto has no autofs-43.img");
  edit("autofs_bad_mode", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-43.img").set_mode(7); },
       "autofs-43.img: entry 0: mode 7 is not direct (0), indirect (1) or offset (2)");
  edit("autofs_proto_range", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-43.img").set_maxproto(3); },
       "autofs-43.img: entry 0: protocol range 5..3 is empty");
  edit("autofs_bad_fd", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-44.img").set_fd(-7); },
       "autofs-44.img: entry 0: fd -7 is neither -1 (catatonic) nor an fd number");
  edit("mountpoints_missing", [](ImageSet& s) { s.erase(kMounts); },
       "mountpoints-4026532101.img: missing: the root task's mount namespace has no mountpoints image");

  // Untrusted images (issue 12): sessions and groups no task could have,
  // values the kernel would refuse, host objects nobody named.
  edit("pgid_0_in_a_session_of_the_tree", [](ImageSet& s) { Task(s, 3).set_pgid(0); },
       "pstree.img: entry 3: task 4 is in a group outside the tree (pgid 0) but in session 1");
  edit("negative_pgid", [](ImageSet& s) { Task(s, 3).set_pgid(static_cast<uint32_t>(-1)); },
       "pstree.img: entry 3: ppid, pgid or sid out of range");
  edit("negative_sid", [](ImageSet& s) { Task(s, 2).set_sid(static_cast<uint32_t>(-5)); },
       "pstree.img: entry 2: ppid, pgid or sid out of range");
  edit("sid_above_pid_max", [](ImageSet& s) { Task(s, 1).set_sid(1u << 23); },
       "pstree.img: entry 1: ppid, pgid or sid out of range");
  edit("ppid_above_pid_max", [](ImageSet& s) { Task(s, 4).set_ppid(0x7fffffff); },
       "pstree.img: entry 4: ppid, pgid or sid out of range");
  edit("pid_above_pid_max", [](ImageSet& s) { Task(s, 4).set_pid(1u << 22); },
       "pstree.img: entry 4: pid 4194304 is out of range");
  edit("thread_id_zero", [](ImageSet& s) { Task(s, 2).add_threads(0); },
       "pstree.img: entry 2: thread id 0 of task 3 is out of range");
  edit("root_in_a_younger_tasks_session", [](ImageSet& s) { Task(s, 0).set_sid(2); },
       "pstree.img: entry 0: task 1 is in session 2 but session 1 bears its pid");
  edit("group_leader_left_its_group", [](ImageSet& s) { Task(s, 2).set_pgid(1); },
       "task 3 left its own process group 3, which lives on with task 4: not supported");
  edit("sid_0_in_a_group_of_the_tree", [](ImageSet& s) { Task(s, 4).set_sid(0); },
       "pstree.img: entry 4: process group 1 spans two sessions: task 5 is in session 0, task 1 in session 1");
  edit("shell_job_without_shell_job", [](ImageSet& s) { Task(s, 1).set_sid(0); },
       "pstree.img: entry 1: task 2 is in a session outside the tree (sid 0): a shell job, restored only with "
       "--shell-job (-j), which leaves it in restore-orch's session and process group");
  edit("pipe_capacity_above_the_kernels", [](ImageSet& s) {
         static_cast<img::pipe_data_entry&>(*s.at("pipes-data.img").entries[0].message).set_size(1u << 31);
       }, "pipes-data.img: entry 0: pipe capacity 2147483648 is not a power of two between 4096 and 1073741824");
  edit("pipe_capacity_below_a_page", [](ImageSet& s) {
         static_cast<img::pipe_data_entry&>(*s.at("pipes-data.img").entries[0].message).set_size(1024);
       }, "pipes-data.img: entry 0: pipe capacity 1024 is not a power of two between 4096");
  edit("fifo_path_escapes", [](ImageSet& s) {
         Mutable<img::file_entry>(s, "files.img", 6).mutable_reg()->set_name("/srv/../etc/passwd");
       }, "path \"/srv/../etc/passwd\" is not absolute or contains \"..\"");
  edit("fifo_without_its_path", [](ImageSet& s) {
         Mutable<img::file_entry>(s, "files.img", 7).mutable_fifo()->set_regf_id(77);
       }, "files.img: entry 7: FIFO 8 names no REG entry for its path (regf_id 77");
  edit("seccomp_new_listener", [](ImageSet& s) {
         Mutable<img::seccomp_entry>(s, "seccomp.img").mutable_seccomp_filters(0)->set_flags(1u << 3);
       }, "has SECCOMP_FILTER_FLAG_NEW_LISTENER: its listener fd cannot be restored");
  edit("seccomp_filter_too_long", [](ImageSet& s) {
         Mutable<img::seccomp_entry>(s, "seccomp.img").mutable_seccomp_filters(0)->set_filter(std::string(8 * 5000, '\0'));
       }, "seccomp.img: entry 0: seccomp filter 0 is 40000 bytes");
  edit("external_mount_nobody_named", [](ImageSet& s) { Mount(s, 8).set_ext_key("host-etc"); },
       "mount /usr (unknown) is external (key \"host-etc\"): give --external host-etc=PATH, or --ext-mount-map auto");
  edit("external_root_mount", [](ImageSet& s) {
         Mount(s, 0).set_ext_mount(true);
         Mount(s, 0).set_ext_key("hostroot");
       }, "mountpoints-4026532101.img: entry 0: the root mount (tmpfs) is external: give --root DIR");
  edit("tmpfs_root_without_contents", [](ImageSet& s) { s.erase("tmpfs-dev-40.tar.gz.img"); },
       "the root mount (tmpfs) is not in the images (no tmpfs-dev-40.tar.gz.img): give --root DIR");
  edit("autofs_negative_uid", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-43.img").set_uid(-1); },
       "autofs-43.img: entry 0: uid or gid is negative");
  edit("autofs_negative_gid", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-43.img").set_gid(-3); },
       "autofs-43.img: entry 0: uid or gid is negative");
  edit("autofs_protocols_the_kernel_does_not_speak", [](ImageSet& s) {
         Mutable<img::autofs_entry>(s, "autofs-43.img").set_minproto(6);
         Mutable<img::autofs_entry>(s, "autofs-43.img").set_maxproto(9);
       }, "autofs-43.img: entry 0: protocol range 6..9 holds none of the versions the kernel speaks (3..5)");
  edit("autofs_old_protocols_only", [](ImageSet& s) {
         Mutable<img::autofs_entry>(s, "autofs-43.img").set_minproto(1);
         Mutable<img::autofs_entry>(s, "autofs-43.img").set_maxproto(2);
       }, "autofs-43.img: entry 0: protocol range 1..2 holds none of the versions the kernel speaks (3..5)");
  edit("tmpfs_size_0_unlimited", [](ImageSet& s) { Mount(s, 2).set_options("size=0"); },
       "mountpoints-4026532101.img: mount 102 at /shared: tmpfs option size=0 makes it unlimited: give --allow-unlimited-tmpfs");
  edit("tmpfs_nr_inodes_0_unlimited", [](ImageSet& s) { Mount(s, 0).set_options("mode=755,nr_inodes=0"); },
       "mountpoints-4026532101.img: mount 100 at /: tmpfs option nr_inodes=0 makes it unlimited");
  edit("tmpfs_size_not_a_size", [](ImageSet& s) { Mount(s, 2).set_options("size=lots"); },
       "mountpoints-4026532101.img: mount 102 at /shared: tmpfs option size=lots is not a size");
  edit("autofs_negative_timeout", [](ImageSet& s) { Mutable<img::autofs_entry>(s, "autofs-43.img").set_timeout(-1); },
       "autofs-43.img: entry 0: negative timeout -1");
  for (Case& a : AttrsCases()) c.push_back(std::move(a));
  // What a task resumes by exec: a program named by an absolute path.
  edit("resume_exe_relative", [](ImageSet& s) { Mutable<img::resume_entry>(s, "resume-1.img").set_exe("sleep"); },
       "resume-1.img: entry 0: exe \"sleep\" is not absolute or contains \"..\"");
  edit("resume_exe_dotdot", [](ImageSet& s) { Mutable<img::resume_entry>(s, "resume-1.img").set_exe("/usr/../tmp/x"); },
       "resume-1.img: entry 0: exe \"/usr/../tmp/x\" is not absolute");
  return c;
}

class Corpus : public ::testing::TestWithParam<Case> {};

TEST_P(Corpus, RefusedWithItsOwnMessage) {
  const Case& tc = GetParam();
  ImageSet set = DemoImages();
  if (tc.edit) tc.edit(set);
  TempDir dir;
  ASSERT_TRUE(WriteImageDir(dir.path(), set).ok());
  if (tc.damage) tc.damage(dir);
  RunResult r = RunCommand(DryRun(dir));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find(tc.expect), std::string::npos) << "stderr was:\n" << r.err;
  EXPECT_TRUE(r.out.empty()) << "a refused plan prints nothing on stdout";
  // Every line is one whole problem naming the directory.
  size_t start = 0;
  while (start < r.err.size()) {
    size_t nl = r.err.find('\n', start);
    ASSERT_NE(nl, std::string::npos);
    EXPECT_EQ(r.err.compare(start, 14 + dir.path().size(), "restore-orch: " + dir.path()), 0)
        << r.err.substr(start, nl - start);
    start = nl + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(BrokenImages, Corpus, ::testing::ValuesIn(Cases()),
                         [](const auto& p) { return p.param.name; });

TEST(CorpusBase, TheUnbrokenSetIsAccepted) {
  RO_SKIP_WITHOUT_AUTOFS();
  TempDir dir;
  ASSERT_TRUE(WriteImageDir(dir.path(), DemoImages()).ok());
  RunResult r = RunCommand(DryRun(dir));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("4. tasks (fork order):"), std::string::npos);
}

TEST(CorpusBase, AShellJobWithShellJob) {
  RO_SKIP_WITHOUT_AUTOFS();
  ImageSet set = DemoImages();
  Task(set, 1).set_sid(0);  // the AutoFS master, born in the caller's session, leads a group in it
  TempDir dir;
  ASSERT_TRUE(WriteImageDir(dir.path(), set).ok());
  RunResult r = RunCommand(DryRun(dir, "--shell-job"));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("pid 2 ppid 1 pgid 2 sid 0 "), std::string::npos) << r.out;
}

TEST(CorpusBase, IgnoreUnsupportedRestoresWithoutThem) {
  RO_SKIP_WITHOUT_AUTOFS();
  TempDir dir;
  ASSERT_TRUE(WriteImageDir(dir.path(), DemoImages()).ok());
  dir.Write("cgroup.img", std::string(4096, '\0'));
  dir.Write("tty.img", "x");
  RunResult refused = RunCommand(DryRun(dir));
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.err.find("tty.img: image kind not supported"), std::string::npos);
  EXPECT_NE(refused.err.find("cgroup.img: image kind not supported"), std::string::npos);
  RunResult ok = RunCommand(DryRun(dir, "--ignore-unsupported"));
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_NE(ok.out.find("ignored unsupported image: cgroup.img"), std::string::npos);
}

TEST(CorpusBase, AutofsOrphansCanBeLeftCatatonic) {
  ImageSet set = DemoImages();
  Mutable<img::autofs_entry>(set, "autofs-43.img").set_pgrp(77);
  TempDir dir;
  ASSERT_TRUE(WriteImageDir(dir.path(), set).ok());
  RunResult refused = RunCommand(DryRun(dir));
  EXPECT_EQ(refused.status, 2);
  RunResult ok = RunCommand(DryRun(dir, "--autofs-orphans=catatonic"));
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_NE(ok.out.find("autofs mnt 105 /auto indirect timeout 300s proto 5..5: dummy pipe, catatonic, stays catatonic"),
            std::string::npos)
      << ok.out;
  EXPECT_NE(ok.err.find("left catatonic (--autofs-orphans=catatonic)"), std::string::npos) << ok.err;
}

TEST(CorpusBase, AnUnlimitedTmpfsOnlyWhenAsked) {
  RO_SKIP_WITHOUT_AUTOFS();
  ImageSet set = DemoImages();
  Mount(set, 2).set_options("size=0");
  TempDir dir;
  ASSERT_TRUE(WriteImageDir(dir.path(), set).ok());
  RunResult refused = RunCommand(DryRun(dir));
  EXPECT_EQ(refused.status, 2) << refused.err;
  RunResult ok = RunCommand(DryRun(dir, "--allow-unlimited-tmpfs"));
  EXPECT_EQ(ok.status, 0) << ok.err;
}

}  // namespace
}  // namespace ro::test
