//! Typed `fission.io/v1` API for Rivulet, plus the Liqo `offloading.liqo.io` kinds Rivulet drives.
//!
//! This crate is pure: types, defaults, well-known keys and validation. No client, no I/O, and no
//! `k8s-openapi` version feature (the `rivulet` binary picks the Kubernetes version).
//!
//! Field names follow Fission v1.22 exactly (including its mixed case: `InvokeStrategy`,
//! `ExecutorType`, `poolsize`, `relativeurl`, ...) so existing Fission YAML deserializes unchanged.
//! Every kind that Fission gives a status subresource gains, additively, a `status` with
//! `observedGeneration` and standard `conditions`.

// kube-derive takes one `printcolumn(...)` attribute per column, which this lint mistakes for
// repetition.
#![allow(clippy::duplicated_attributes)]

pub mod canary;
pub mod common;
pub mod conditions;
pub mod crds;
pub mod defaults;
pub mod environment;
pub mod error_chain;
pub mod function;
pub mod httptrigger;
pub mod keys;
pub mod kubewatcher;
pub mod liqo;
pub mod mqtrigger;
pub mod object;
pub mod package;
pub mod pod_status;
mod schema;
pub mod specialize;
pub mod timetrigger;
pub mod validation;

pub use canary::{CanaryConfig, CanaryConfigSpec, CanaryConfigStatus};
pub use common::{ConditionedStatus, FunctionReference, ObjectRef, SecretOrConfigMapRef};
pub use environment::{
    Builder, ClusterPoolStatus, Environment, EnvironmentSpec, EnvironmentStatus, Placement, Runtime,
};
pub use function::{
    ExecutionStrategy, ExecutorType, Function, FunctionPackageRef, FunctionSpec, InvokeStrategy,
    PackageRef,
};
pub use httptrigger::{HTTPTrigger, HTTPTriggerSpec, IngressConfig};
pub use kubewatcher::{
    DeliveredEvent, KubernetesWatchTrigger, KubernetesWatchTriggerSpec,
    KubernetesWatchTriggerStatus, WatchDelivery,
};
pub use mqtrigger::{MessageQueueTrigger, MessageQueueTriggerSpec};
pub use object::{API_VERSION, FissionObject, GROUP, ObjectError, VERSION};
pub use package::{
    Archive, ArchiveType, BuildStatus, Checksum, Package, PackageSpec, PackageStatus,
};
pub use timetrigger::{TimeTrigger, TimeTriggerSpec, TimeTriggerStatus};
