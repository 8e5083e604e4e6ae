#include "orchestrator/attrs.h"

#include "sys/task_attrs.h"

namespace ro {

Result<images::HostAttrs> ReadHostAttrs() {
  RO_ASSIGN_OR_RETURN(sys::OwnAttrs own, sys::ReadOwnAttrs());
  images::HostAttrs h;
  h.hard_limits = own.hard_limits;
  h.nr_open = own.nr_open;
  h.cap_sys_resource = own.cap_sys_resource;
  h.cap_sys_nice = own.cap_sys_nice;
  h.nice = own.nice;
  h.no_new_privs = own.no_new_privs;
  h.loginuid = own.loginuid;
  h.oom_score_adj = own.oom_score_adj;
  h.uids = own.uids;
  h.gids = own.gids;
  h.caps = own.caps;
  h.securebits = own.securebits;
  h.groups = own.groups;
  h.uid_map.clear();
  h.gid_map.clear();
  for (const sys::IdMapLine& l : own.uid_map) h.uid_map.push_back({l.inside, l.outside, l.count});
  for (const sys::IdMapLine& l : own.gid_map) h.gid_map.push_back({l.inside, l.outside, l.count});
  return h;
}

}  // namespace ro
