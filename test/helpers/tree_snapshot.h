// A live tree, read from outside, in the format and normalization of the
// CRIU fixtures' expected.txt (/work/shared/criu-images/*/expected.txt,
// written by the snapshot() of each fixture's make.sh): pids in the tree's
// own PID namespace, paths as seen from its root, pipes labelled pipe#N by
// first appearance, mountinfo sorted with parents named by mount point, peer
// group ids renumbered, AutoFS pgrp= in the tree's pids and pipe_ino= as a
// pipe label, tmpfs contents with sizes, modes and md5 of files.
//
// Independent of restore-orch's own /proc readers (sys/): only libc and the
// kernel, so that a bug there cannot hide itself.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace ro::test {

// The snapshot of the tree whose root task is `root` (a pid as the caller
// sees it; the caller's /proc must be its PID namespace's): the sections
// [tasks], [fds], [open file descriptions shared by several fds], [pipes and
// FIFOs], [mountinfo], [autofs] (only when the tree has an AutoFS mount) and
// [tmpfs contents], each headed as in expected.txt and separated by a blank
// line. Errors reading /proc show in the text (as make.sh's "None" or "?").
std::string SnapshotTree(pid_t root);

// A snapshot text (or expected.txt) cut into sections as make.sh's compare
// does: a section is named by its first line up to "]" ("[fds]"); its lines
// are the non-empty ones that follow, less the "  (normalized..." note;
// lines before the first section (expected.txt's "#" header) are dropped.
struct Sections {
  std::vector<std::string> names;                           // in order
  std::map<std::string, std::vector<std::string>> lines;    // by name
  const std::vector<std::string>* Find(const std::string& name) const {
    auto it = lines.find(name);
    return it == lines.end() ? nullptr : &it->second;
  }
};
Sections ParseSections(const std::string& text);

// The lowercase hex MD5 of `data` (RFC 1321), as Python's hashlib prints it.
std::string Md5Hex(const std::string& data);

// What Python's repr() prints for `data` decoded as latin-1 (make.sh shows
// small files that way), in UTF-8.
std::string PyReprLatin1(const std::string& data);

}  // namespace ro::test
