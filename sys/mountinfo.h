// /proc/PID/mountinfo, parsed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sys/status.h"

namespace ro::sys {

struct MountInfo {
  uint32_t mnt_id = 0;
  uint32_t parent_id = 0;
  uint32_t major = 0;
  uint32_t minor = 0;
  std::string root;
  std::string mountpoint;
  std::string mount_options;  // per-mount ("rw,nosuid")
  uint32_t shared = 0;        // shared:N
  uint32_t master = 0;        // master:N
  bool unbindable = false;
  std::string fstype;
  std::string source;
  std::string super_options;  // per-superblock ("rw,fd=5,pgrp=1,...")

  // The value of "key=value" in super_options, or empty.
  std::string SuperOption(std::string_view key) const;
};

Result<std::vector<MountInfo>> ParseMountInfo(std::string_view text);
Result<std::vector<MountInfo>> ReadMountInfo(const std::string& proc_path = "/proc/self/mountinfo");
// The same, `proc_path` relative to the directory `dir_fd` (a /proc opened
// before a setns into a mount namespace that has none); an empty
// `proc_path`: `dir_fd` is the open mountinfo file itself (read from its
// current offset).
Result<std::vector<MountInfo>> ReadMountInfoAt(int dir_fd, const std::string& proc_path);

}  // namespace ro::sys
