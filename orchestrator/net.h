// The tree's own network namespace, as its root task makes it right after
// its clone (CLONE_NEWNET), before any other task exists.
#pragma once

#include <functional>

#include "images/plan.h"
#include "sys/net_namespace.h"
#include "sys/netlink.h"
#include "sys/status.h"

namespace ro {

// In the calling task's (new) network namespace: writes each of `net`'s
// sysctls whose value differs from the namespace's (through `proc_fd`, a
// /proc of the task), sets the loopback's flags and MTU, then makes its
// addresses exactly `net.addresses` (removing those the kernel gave it
// that the images lack). Errors name the sysctl, link or address and the
// call.
Status RestoreNetNamespace(const images::NetPlan& net, int proc_fd);

// RestoreNetNamespace into a new namespace that a short-lived thread makes
// and drops: what the kernel would refuse of `net` (a lifetime, an MTU, a
// sysctl's value) fails here, before a restore creates anything. With
// `state`, the namespace as it then is (sys::ReadNetNamespaceState), for a
// dump and verify to compare with a live one; what the kernel finishes in
// the background (an IPv6 address's local route) may lag, so until
// `settled` says yes the state is read again, every 20 ms for up to half a
// second. Errors: RestoreNetNamespace's and the read's, and unshare(2)'s.
Status TrialNetNamespace(const images::NetPlan& net, sys::NetNamespaceState* state = nullptr,
                         const std::function<bool(const sys::NetNamespaceState&)>& settled = nullptr);

}  // namespace ro
