//! Triggers: what calls functions from outside HTTP. The kubewatcher and the timer run one task
//! per trigger ([`tasks`]) that calls its function through the router's internal listener
//! ([`delivery`]) and writes the trigger's status ([`status`]); the mqtrigger is a reconciler
//! of KEDA connector Deployments.

pub mod delivery;
pub mod kubewatcher;
pub mod mqtrigger;
pub mod status;
pub mod tasks;
pub mod timetrigger;
