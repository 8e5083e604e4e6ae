#include "orchestrator/verify/verify.h"

#include "orchestrator/verify/verifier.h"

namespace ro {

std::vector<std::string> VerifyTree(const images::RestorePlan& plan, pid_t root) { return verify::Verifier(plan, root).Run(); }

}  // namespace ro
