// BuildPlan: the checklist of planners. Each reads its concern's images
// into the shared context; the later ones need a sound tree of tasks and
// mounts to work on, so they run only while no problem was found.
#include "images/plan/context.h"

namespace ro::images {

PlanOutcome BuildPlan(const ImageDir& dir, const PlanOptions& options) {
  plan::Context ctx(dir, options);
  ctx.plan.image_dir = dir.path;
  if (plan::PlanInventory(ctx) && plan::PlanTasks(ctx)) {
    plan::PlanFileTables(ctx);
    plan::PlanResume(ctx);
    plan::PlanSeccomp(ctx);
    if (ctx.ok()) plan::PlanMounts(ctx);
    if (ctx.ok()) plan::PlanAutofs(ctx);
    if (ctx.ok()) plan::PlanForks(ctx);
    if (ctx.ok()) plan::PlanFileCreation(ctx);
    if (ctx.ok()) plan::PlanLayout(ctx);
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
