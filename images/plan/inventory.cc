// inventory.img, and the image kinds the directory holds that restore-orch
// does not restore.
#include "images/plan/context.h"
#include "images/proto/inventory.pb.h"

namespace ro::images::plan {

bool PlanInventory(Context& ctx) {
  ctx.plan.unsupported_files = ctx.dir.unsupported;
  if (!ctx.options.ignore_unsupported) {
    for (const std::string& name : ctx.dir.unsupported) {
      ctx.problems.Add(name, std::nullopt,
                       "image kind not supported by restore-orch (--ignore-unsupported restores without it)");
    }
  }
  const ImageFile* f = ctx.dir.Find(InventoryKind());
  const std::string name = MakeFileName(InventoryKind());
  if (f == nullptr) {
    ctx.problems.Add(name, std::nullopt, "missing: not an image directory");
    return false;
  }
  const auto& inv = f->As<img::inventory_entry>(0);
  if (inv.img_version() != 2) {
    ctx.problems.Add(name, 0, "img_version " + Str(inv.img_version()) + " is not supported (only 2)");
  }
  if (!inv.fdinfo_per_id()) {
    ctx.problems.Add(name, 0, "fdinfo_per_id is not set: images from a CRIU too old to read");
  }
  if (inv.has_root_ids()) ctx.root_ids = &inv.root_ids();
  return true;
}

}  // namespace ro::images::plan
