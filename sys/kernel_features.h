// What the kernel offers that a restore needs, probed once into a value
// that callers pass around. Probes run in a throw-away child in new PID and
// mount namespaces; nothing they do is visible outside it.
#pragma once

#include <string>
#include <vector>

#include "sys/status.h"

namespace ro::sys {

struct KernelFeature {
  std::string name;
  bool ok = false;
  std::string detail;    // what was seen, or why it failed
  bool required = true;  // false: only a speed-up; a restore and a dump work without it
};

struct KernelFeatures {
  std::vector<KernelFeature> features;

  // Every required feature is there (optional ones may be missing).
  bool AllOk() const;
  bool Has(const std::string& name) const;
};

// Whether a feature of ProbeKernel's is only a speed-up.
bool IsOptionalFeature(const std::string& name);

// Feature names: "clone3-set-tid", "pid-namespace", "mount-namespace",
// "move-mount-set-group", "autofs-pipe-ino", "dev-autofs" (the tree and
// its mounts); "ptrace-seize-interrupt", "prctl-mm-map", "rseq" (what the
// memory restore does: the orchestrator seizes and stops each continuing
// task, its restorer sets the mm fields and the rseq area); optional:
// "pagemap-scan" (the dump's page scan) and "madv-populate-write" (the
// restore's page fill).
// Fails only when the probe itself cannot run (fork, pipe); a missing
// feature is an entry with ok == false.
Result<KernelFeatures> ProbeKernel();

}  // namespace ro::sys
