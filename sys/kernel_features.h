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
  std::string detail;  // what was seen, or why it failed
};

struct KernelFeatures {
  std::vector<KernelFeature> features;

  bool AllOk() const;
  bool Has(const std::string& name) const;
};

// Feature names: "clone3-set-tid", "pid-namespace", "mount-namespace",
// "move-mount-set-group", "autofs-pipe-ino", "dev-autofs".
// Fails only when the probe itself cannot run (fork, pipe); a missing
// feature is an entry with ok == false.
Result<KernelFeatures> ProbeKernel();

}  // namespace ro::sys
