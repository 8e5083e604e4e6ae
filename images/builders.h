// Entries restore-orch writes itself (the dump, and the tests' image
// builders), filled the way CRIU fills them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "images/proto/fdinfo.pb.h"
#include "images/proto/inventory.pb.h"
#include "images/proto/pstree.pb.h"

namespace ro::images {

// The inventory: image version 2, fdinfo per files id, and the ids of the
// namespaces outside the tree (a task with other ids has its own).
std::unique_ptr<img::inventory_entry> NewInventory(uint32_t pid_ns_id, uint32_t mnt_ns_id);

// A single-threaded task of pstree.img.
std::unique_ptr<img::pstree_entry> NewPstreeEntry(int32_t pid, int32_t ppid, int32_t pgid, int32_t sid);

// files.img entries. No owner (fown) is recorded: pid 0.
std::unique_ptr<img::file_entry> NewRegularFile(uint32_t id, const std::string& path, uint32_t flags, uint64_t pos,
                                                uint32_t mnt_id = 0);
std::unique_ptr<img::file_entry> NewPipe(uint32_t id, uint32_t pipe_id, uint32_t flags);
// A FIFO's description; `path_id` is the regular-file entry naming its path.
std::unique_ptr<img::file_entry> NewFifo(uint32_t id, uint32_t pipe_id, uint32_t path_id);

}  // namespace ro::images
