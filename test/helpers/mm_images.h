// Shared by the memory dump tests: a tree started in a new PID namespace,
// its tasks and their states, the key=value lines test/helpers/mm_counter
// writes, and a dump's images read back with restore-orch's own reader
// (one image file; a pagemap with its pages file, page by page).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "images/image_file.h"
#include "test/helpers/test_util.h"

namespace ro::test {

// The path of test/helpers/mm_counter.
std::string MmCounter();
// restore-orch dump --tree ROOT --images DIR, and `extra` arguments.
RunResult RunDump(pid_t root, const std::string& dir, std::vector<std::string> extra = {});

// A whole small file ("" when it cannot be read).
std::string ReadText(const std::string& path);

// Clones a task into a new PID namespace (its init, leading a session of
// its own) with only /dev/null at 0-2, running `init` (which execs or
// waits); its pid as the caller sees it.
pid_t StartTreeInNewPidNs(const std::function<void()>& init);
// `root` and the tasks below it (pids as the caller sees them).
std::vector<pid_t> TreeBelow(pid_t root);
// The state letter of /proc/PID/stat ('?' when gone).
char TaskState(pid_t pid);

// "key=value key=value" words of a line, and one value as a number (0x
// hex, 0 octal or decimal; 0 when absent).
std::map<std::string, std::string> KeyValues(const std::string& line);
uint64_t NumberOf(const std::map<std::string, std::string>& fields, const std::string& key);

// One image file of `dir`, parsed by restore-orch's reader.
std::optional<images::ImageFile> ReadImage(const std::string& dir, const std::string& name);

// A pagemap (pagemap-N.img, pagemap-shmem-N.img) and its pages file: what a
// restore reads back.
class ImageMemory {
 public:
  static constexpr uint64_t kPage = 4096;
  // Reads the pagemap; false when it or its pages file is malformed (every
  // entry PE_PRESENT with nr_pages, the pages file exactly as long).
  bool Load(const std::string& dir, const std::string& pagemap_name);
  // The page holding `addr`, or nothing when it was not dumped.
  std::optional<std::string> Page(uint64_t addr) const;
  // Whether any dumped page lies in [start, end).
  bool Covers(uint64_t start, uint64_t end) const;
  uint64_t pages() const;
  uint32_t pages_id() const { return pages_id_; }

 private:
  struct Run {
    uint64_t vaddr, pages, offset;
  };
  std::vector<Run> runs_;
  std::string pages_;
  uint32_t pages_id_ = 0;
};

}  // namespace ro::test
