// BuildPlan: the checklist of planners. Each reads its concern's images
// into the shared context, so that one run reports every problem it can
// find; the ones that lay out the restore itself (forks, file creation,
// addresses) need everything before them sound and run only then.
#include "images/plan/context.h"

namespace ro::images {

PlanOutcome BuildPlan(const ImageDir& dir, const PlanOptions& options) {
  plan::Context ctx(dir, options);
  ctx.plan.image_dir = dir.path;
  if (plan::PlanInventory(ctx) && plan::PlanTasks(ctx)) {
    plan::PlanFileTables(ctx);
    plan::PlanResume(ctx);
    plan::PlanMemory(ctx);
    plan::PlanSeccomp(ctx);
    plan::PlanAttrs(ctx);
    plan::PlanMounts(ctx);
    plan::PlanAutofs(ctx);
    if (ctx.ok()) plan::PlanForks(ctx);
    if (ctx.ok()) plan::PlanFileCreation(ctx);
    if (ctx.ok()) plan::PlanZone(ctx);
    if (ctx.ok()) plan::LayOutTasks(ctx);
  }
  PlanOutcome out;
  if (ctx.ok()) {
    out.plan = std::move(ctx.plan);
  } else {
    out.errors = ctx.problems.Take();
  }
  return out;
}

}  // namespace ro::images
