//! The httptrigger reconciler: validation, resolution of the referenced function(s), route
//! conflicts (reported as `Ready=False`/`RouteConflict`, the older trigger keeps the route), and
//! the optional Ingress of Fission's `createingress`.
//!
//! Route semantics come from the route table the router uses (`rivulet_routing::routes`): the status
//! says exactly what the router does with the trigger, from one implementation.

pub mod ingress;
pub mod reconciler;
