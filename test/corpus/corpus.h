// The broken-image corpus: each case edits the demo image set (or damages
// its files once written), and the real binary's --dry-run must refuse it
// with exit status 2 and a line holding `expect`. corpus_test.cc holds the
// runner and most cases; each file here adds the cases of a concern.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "test/helpers/test_util.h"

namespace ro::test {

struct Case {
  std::string name;
  std::function<void(ImageSet&)> edit;         // on the messages, before writing
  std::function<void(const TempDir&)> damage;  // on the files, after writing
  std::string expect;                          // a substring of one error line
};
inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// Values of a live task's attributes the kernel would refuse or change
// (attrs_cases.cc): limits, scheduling, parent-death signal,
// no_new_privs, umask, OOM score, timer slack, TSC mode.
std::vector<Case> AttrsCases();

}  // namespace ro::test
