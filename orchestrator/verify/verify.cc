#include "orchestrator/verify/verify.h"

#include "orchestrator/verify/verifier.h"

namespace ro {

std::vector<std::string> VerifyTree(const images::RestorePlan& plan, pid_t root, int images_fd) {
  return verify::Verifier(plan, root, images_fd).Run();
}

}  // namespace ro
