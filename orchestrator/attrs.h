// attrs, the orchestrator's half: what restore-orch here can give the tasks
// it restores (its own hard limits, capabilities, nice, no_new_privs, login
// uid, OOM score, credentials: every task inherits them and can only lower what needs a
// capability to raise), for the plan's checks at restore, --dry-run and the
// dump's check of its images. The tasks set their attributes themselves
// (worker/attrs.h, restorer/).
#pragma once

#include "images/plan.h"
#include "sys/status.h"

namespace ro {

// restore-orch's own attributes. Errors name the /proc file or call.
Result<images::HostAttrs> ReadHostAttrs();

}  // namespace ro
