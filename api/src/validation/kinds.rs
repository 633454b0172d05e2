//! One validation function per kind. Field paths are JSON paths as users write them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::cron::{parse_cron, parse_go_duration};
use super::errors::ValidationErrors;
use super::names::{
    is_dns1123_label, is_dns1123_subdomain, is_label_value, is_qualified_name,
    is_wildcard_dns1123_subdomain,
};
use crate::common::{FunctionReference, ObjectRef, function_reference_type};
use crate::defaults::{ARCHIVE_LITERAL_SIZE_LIMIT, HTTP_METHODS};
use crate::environment::{functions_per_container, placement_split};
use crate::function::ExecutorType;
use crate::kubewatcher::WATCHABLE_TYPES;
use crate::mqtrigger::KEDA_QUEUE_TYPES;
use crate::package::{Archive, BuildStatus};
use crate::{
    CanaryConfig, Environment, Function, HTTPTrigger, KubernetesWatchTrigger, MessageQueueTrigger,
    Package, TimeTrigger,
};

const LABEL_RULE: &str = "must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)";

/// Largest total size of an Ingress's annotations (keys plus values), as upstream.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

/// Validates an Environment.
pub fn validate_environment(env: &Environment) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    metadata(&mut errs, &env.metadata);
    let spec = &env.spec;
    if !(1..=3).contains(&spec.version) {
        errs.push(
            "spec.version",
            format!("must be 1, 2 or 3, got {}", spec.version),
        );
    }
    if spec.runtime.image.trim().is_empty() {
        errs.push("spec.runtime.image", "must name the runtime image");
    }
    if let Some(value) = spec.allowed_functions_per_container.as_deref()
        && !value.is_empty()
        && value != functions_per_container::SINGLE
        && value != functions_per_container::INFINITE
    {
        errs.push(
            "spec.allowedFunctionsPerContainer",
            format!("unsupported value {value:?}: must be \"single\" or \"infinite\""),
        );
    }
    if let Some(size) = spec.poolsize
        && size < 0
    {
        errs.push("spec.poolsize", format!("must be ≥ 0, got {size}"));
    }
    if let Some(grace) = spec.termination_grace_period
        && grace < 0
    {
        errs.push(
            "spec.terminationGracePeriod",
            format!("must be ≥ 0, got {grace}"),
        );
    }
    if let Some(split) = spec.placement.as_ref().and_then(|p| p.split.as_deref())
        && !split.is_empty()
        && split != placement_split::UNIFORM
        && split != placement_split::WEIGHTED
    {
        errs.push(
            "spec.placement.split",
            format!("unsupported value {split:?}: must be \"Uniform\" or \"Weighted\""),
        );
    }
    let env_name = env.metadata.name.as_deref().unwrap_or_default();
    if let Some(podspec) = &spec.runtime.podspec {
        for (i, c) in podspec.containers.iter().enumerate() {
            let is_runtime = c.command.as_ref().is_none_or(Vec::is_empty)
                && c.image.as_deref() == Some(spec.runtime.image.as_str());
            if is_runtime && c.name != env_name {
                errs.push(
                    format!("spec.runtime.podspec.containers[{i}].name"),
                    format!(
                        "a container running the runtime image without a command must be named after the environment ({env_name:?}), got {:?}",
                        c.name
                    ),
                );
            }
        }
    }
    errs
}

/// Validates a Function.
pub fn validate_function(function: &Function) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    metadata(&mut errs, &function.metadata);
    let spec = &function.spec;
    object_ref(&mut errs, "spec.environment", &spec.environment);
    object_ref(
        &mut errs,
        "spec.package.packageref",
        &ObjectRef {
            namespace: spec.package.packageref.namespace.clone(),
            name: spec.package.packageref.name.clone(),
        },
    );
    let namespace = function.metadata.namespace.as_deref().unwrap_or_default();
    for (field, refs, what) in [
        ("spec.secrets", &spec.secrets, "Secret"),
        ("spec.configmaps", &spec.configmaps, "ConfigMap"),
    ] {
        for (i, r) in refs.iter().flatten().enumerate() {
            object_ref(&mut errs, &format!("{field}[{i}]"), r);
            if !r.namespace.is_empty() && !namespace.is_empty() && r.namespace != namespace {
                errs.push(
                    format!("{field}[{i}].namespace"),
                    format!(
                        "{what} needs to be present in the same namespace as function ({namespace:?}), got {:?}",
                        r.namespace
                    ),
                );
            }
        }
    }
    let strategy = &spec.invoke_strategy;
    let exec = &strategy.execution_strategy;
    let path = "spec.InvokeStrategy";
    if strategy.strategy_type != "execution" {
        errs.push(
            format!("{path}.StrategyType"),
            format!(
                "unsupported value {:?}: must be \"execution\"",
                strategy.strategy_type
            ),
        );
    }
    let executor = ExecutorType::parse(&exec.executor_type);
    if executor.is_none() {
        errs.push(
            format!("{path}.ExecutionStrategy.ExecutorType"),
            format!(
                "unsupported value {:?}: must be \"poolmgr\", \"newdeploy\" or \"container\"",
                exec.executor_type
            ),
        );
    }
    if matches!(
        executor,
        Some(ExecutorType::Newdeploy | ExecutorType::Container)
    ) {
        let min = exec.min_scale.unwrap_or(0);
        let max = exec.max_scale.unwrap_or(0);
        if min < 0 {
            errs.push(
                format!("{path}.ExecutionStrategy.MinScale"),
                format!("must be ≥ 0, got {min}"),
            );
        }
        if max <= 0 {
            errs.push(
                format!("{path}.ExecutionStrategy.MaxScale"),
                format!("must be > 0, got {max}"),
            );
        } else if max < min {
            errs.push(
                format!("{path}.ExecutionStrategy.MaxScale"),
                format!("must be ≥ MinScale ({min}), got {max}"),
            );
        }
        if let Some(cpu) = exec.target_cpu_percent
            && !(0..=100).contains(&cpu)
        {
            errs.push(
                format!("{path}.ExecutionStrategy.TargetCPUPercent"),
                format!("must be between 1 and 100, got {cpu}"),
            );
        }
    }
    if executor == Some(ExecutorType::Container) && spec.podspec.is_none() {
        errs.push(
            "spec.podspec",
            "executor type container requires a pod spec",
        );
    }
    errs
}

/// Validates a Package.
pub fn validate_package(package: &Package) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    metadata(&mut errs, &package.metadata);
    object_ref(&mut errs, "spec.environment", &package.spec.environment);
    for (field, archive) in [
        ("spec.source", &package.spec.source),
        ("spec.deployment", &package.spec.deployment),
    ] {
        if let Some(archive) = archive {
            validate_archive(&mut errs, field, archive);
        }
    }
    if let Some(status) = package
        .status
        .as_ref()
        .and_then(|s| s.buildstatus.as_deref())
        && !status.is_empty()
        && BuildStatus::parse(status).is_none()
    {
        errs.push(
            "status.buildstatus",
            format!(
                "unsupported value {status:?}: must be pending, running, succeeded, failed or none"
            ),
        );
    }
    errs
}

fn validate_archive(errs: &mut ValidationErrors, field: &str, archive: &Archive) {
    match archive.archive_type.as_deref().unwrap_or_default() {
        "" | "literal" => {}
        "url" => {
            let url = archive.url.as_deref().unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errs.push(
                    format!("{field}.url"),
                    format!("a url archive needs an http(s) URL, got {url:?}"),
                );
            }
        }
        other => errs.push(
            format!("{field}.type"),
            format!("unsupported value {other:?}: must be \"literal\" or \"url\""),
        ),
    }
    if let Some(literal) = &archive.literal
        && literal.0.len() > ARCHIVE_LITERAL_SIZE_LIMIT
    {
        errs.push(
            format!("{field}.literal"),
            format!(
                "Package literal larger than 262 kB ({} bytes, limit {ARCHIVE_LITERAL_SIZE_LIMIT}); store it at a URL with a checksum instead",
                literal.0.len()
            ),
        );
    }
    if let Some(checksum) = &archive.checksum {
        let kind = checksum.checksum_type.as_deref().unwrap_or_default();
        let sum = checksum.sum.as_deref().unwrap_or_default();
        if !(kind.is_empty() && sum.is_empty()) {
            if kind != "sha256" {
                errs.push(
                    format!("{field}.checksum.type"),
                    format!("unsupported value {kind:?}: must be \"sha256\""),
                );
            }
            if !(sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit())) {
                errs.push(
                    format!("{field}.checksum.sum"),
                    format!("must be 64 hex digits (a SHA-256), got {sum:?}"),
                );
            }
        }
    }
}

/// Validates an HTTPTrigger.
pub fn validate_http_trigger(trigger: &HTTPTrigger) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    metadata(&mut errs, &trigger.metadata);
    let spec = &trigger.spec;
    if let Some(host) = spec.host.as_deref()
        && !host.is_empty()
        && !is_dns1123_subdomain(host)
    {
        errs.push(
            "spec.host",
            format!("must be a DNS-1123 subdomain, got {host:?}"),
        );
    }
    if let Some(method) = spec.method.as_deref()
        && !method.is_empty()
    {
        http_method(&mut errs, "spec.method", method);
    }
    for (i, method) in spec.methods.iter().flatten().enumerate() {
        http_method(&mut errs, &format!("spec.methods[{i}]"), method);
    }
    if spec.effective_prefix().is_none() && spec.relativeurl.as_deref().is_none_or(str::is_empty) {
        errs.push(
            "spec.relativeurl",
            "one of relativeurl or prefix must be set, or the trigger matches nothing",
        );
    }
    for (field, path) in [
        ("spec.relativeurl", spec.relativeurl.as_deref()),
        ("spec.prefix", spec.effective_prefix()),
    ] {
        if let Some(path) = path.filter(|p| !p.is_empty())
            && !path.starts_with('/')
        {
            errs.push(field, format!("must start with '/', got {path:?}"));
        }
    }
    function_reference(&mut errs, "spec.functionref", &spec.functionref);
    if let Some(ingress) = &spec.ingressconfig {
        if let Some(path) = ingress.path.as_deref()
            && !path.is_empty()
        {
            if !path.starts_with('/') {
                errs.push(
                    "spec.ingressconfig.path",
                    format!("must start with '/', got {path:?}"),
                );
            } else if let Err(why) = check_posix_regex(path) {
                errs.push(
                    "spec.ingressconfig.path",
                    format!("must be a valid POSIX regular expression: {why}"),
                );
            }
        }
        if let Some(host) = ingress.host.as_deref()
            && !(host.is_empty() || host == "*")
            && !(is_dns1123_subdomain(host) || is_wildcard_dns1123_subdomain(host))
        {
            errs.push(
                "spec.ingressconfig.host",
                format!("must be empty, \"*\", or a (wildcard) DNS-1123 subdomain, got {host:?}"),
            );
        }
        if let Some(annotations) = &ingress.annotations {
            let mut total = 0;
            for (key, value) in annotations {
                total += key.len() + value.len();
                if !is_qualified_name(key) {
                    errs.push(
                        format!("spec.ingressconfig.annotations[{key}]"),
                        "annotation keys must be qualified names ([prefix/]name)",
                    );
                }
            }
            if total > ANNOTATIONS_SIZE_LIMIT {
                errs.push(
                    "spec.ingressconfig.annotations",
                    format!(
                        "annotations are {total} bytes, must be at most {ANNOTATIONS_SIZE_LIMIT}"
                    ),
                );
            }
        }
    }
    errs
}

/// Validates a KubernetesWatchTrigger.
pub fn validate_kubernetes_watch_trigger(trigger: &KubernetesWatchTrigger) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    metadata(&mut errs, &trigger.metadata);
    let spec = &trigger.spec;
    if !is_dns1123_label(&spec.namespace) {
        errs.push(
            "spec.namespace",
            format!("{LABEL_RULE}, got {:?}", spec.namespace),
        );
    }
    let object_type = spec.object_type.to_ascii_uppercase();
    if !WATCHABLE_TYPES.contains(&object_type.as_str()) {
        errs.push(
            "spec.type",
            format!(
                "unsupported value {:?}: must be pod, service, replicationcontroller or job",
                spec.object_type
            ),
        );
    }
    label_map(&mut errs, "spec.labelselector", spec.labelselector.as_ref());
    function_reference(&mut errs, "spec.functionref", &spec.functionref);
    errs
}

/// Validates a TimeTrigger.
pub fn validate_time_trigger(trigger: &TimeTrigger) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    metadata(&mut errs, &trigger.metadata);
    let spec = &trigger.spec;
    if let Err(e) = parse_cron(&spec.cron) {
        errs.push(
            "spec.cron",
            format!("invalid cron spec {:?}: {e}", spec.cron),
        );
    }
    if let Some(method) = spec.method.as_deref()
        && !method.is_empty()
    {
        http_method(&mut errs, "spec.method", method);
    }
    function_reference(&mut errs, "spec.functionref", &spec.functionref);
    errs
}

/// Validates a MessageQueueTrigger.
pub fn validate_message_queue_trigger(trigger: &MessageQueueTrigger) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    metadata(&mut errs, &trigger.metadata);
    let spec = &trigger.spec;
    let queue_type = spec.message_queue_type.as_deref().unwrap_or_default();
    if spec.mqtkind.as_deref() == Some("keda") {
        if !KEDA_QUEUE_TYPES.contains(&queue_type) {
            errs.push(
                "spec.messageQueueType",
                format!(
                    "unsupported value {queue_type:?} for mqtkind keda: must be one of {}",
                    KEDA_QUEUE_TYPES.join(", ")
                ),
            );
        }
    } else {
        if queue_type != "kafka" {
            errs.push(
                "spec.messageQueueType",
                format!("unsupported value {queue_type:?}: only \"kafka\" is supported without mqtkind keda"),
            );
        }
        if !is_kafka_topic(&spec.topic) {
            errs.push(
                "spec.topic",
                format!(
                    "must match ^[a-zA-Z0-9][a-zA-Z0-9\\-\\._]*[a-zA-Z0-9]$, got {:?}",
                    spec.topic
                ),
            );
        }
    }
    function_reference(&mut errs, "spec.functionref", &spec.functionref);
    errs
}

/// Validates a CanaryConfig.
pub fn validate_canary_config(canary: &CanaryConfig) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    metadata(&mut errs, &canary.metadata);
    let spec = &canary.spec;
    for (field, name) in [
        ("spec.trigger", &spec.trigger),
        ("spec.newfunction", &spec.newfunction),
        ("spec.oldfunction", &spec.oldfunction),
    ] {
        if !is_dns1123_label(name) {
            errs.push(field, format!("{LABEL_RULE}, got {name:?}"));
        }
    }
    if let Some(step) = spec.weightincrement
        && !(1..=100).contains(&step)
    {
        errs.push(
            "spec.weightincrement",
            format!("must be between 1 and 100, got {step}"),
        );
    }
    if let Some(threshold) = spec.failurethreshold
        && !(0..=100).contains(&threshold)
    {
        errs.push(
            "spec.failurethreshold",
            format!("must be a percentage (0-100), got {threshold}"),
        );
    }
    if let Some(duration) = spec.duration.as_deref()
        && !duration.is_empty()
        && let Err(e) = parse_go_duration(duration)
    {
        errs.push(
            "spec.duration",
            format!("must be a duration such as 2m: {e}"),
        );
    }
    if let Some(kind) = spec.failure_type.as_deref()
        && !kind.is_empty()
        && kind != "status-code"
    {
        errs.push(
            "spec.failureType",
            format!("unsupported value {kind:?}: must be \"status-code\""),
        );
    }
    errs
}

fn metadata(errs: &mut ValidationErrors, meta: &ObjectMeta) {
    let name = meta.name.as_deref().unwrap_or_default();
    if !is_dns1123_label(name) {
        errs.push("metadata.name", format!("{LABEL_RULE}, got {name:?}"));
    }
    if let Some(ns) = meta.namespace.as_deref()
        && !ns.is_empty()
        && !is_dns1123_label(ns)
    {
        errs.push("metadata.namespace", format!("{LABEL_RULE}, got {ns:?}"));
    }
}

fn object_ref(errs: &mut ValidationErrors, field: &str, r: &ObjectRef) {
    if !is_dns1123_label(&r.name) {
        errs.push(
            format!("{field}.name"),
            format!("{LABEL_RULE}, got {:?}", r.name),
        );
    }
    if !r.namespace.is_empty() && !is_dns1123_label(&r.namespace) {
        errs.push(
            format!("{field}.namespace"),
            format!("{LABEL_RULE}, got {:?}", r.namespace),
        );
    }
}

fn function_reference(errs: &mut ValidationErrors, field: &str, r: &FunctionReference) {
    match r.reference_type.as_str() {
        function_reference_type::NAME => {
            let name = r.name.as_deref().unwrap_or_default();
            if !is_dns1123_label(name) {
                errs.push(
                    format!("{field}.name"),
                    format!("{LABEL_RULE}, got {name:?}"),
                );
            }
        }
        function_reference_type::FUNCTION_WEIGHTS => {
            let weights = r.functionweights.clone().unwrap_or_default();
            if weights.is_empty() {
                errs.push(
                    format!("{field}.functionweights"),
                    "must name at least one function",
                );
            }
            for (name, weight) in &weights {
                if !is_dns1123_label(name) {
                    errs.push(
                        format!("{field}.functionweights[{name}]"),
                        format!("function name {LABEL_RULE}"),
                    );
                }
                if !(0..=100).contains(weight) {
                    errs.push(
                        format!("{field}.functionweights[{name}]"),
                        format!("weight must be 0-100, got {weight}"),
                    );
                }
            }
        }
        other => errs.push(
            format!("{field}.type"),
            format!("unsupported value {other:?}: must be \"name\" or \"function-weights\""),
        ),
    }
}

fn http_method(errs: &mut ValidationErrors, field: &str, method: &str) {
    if !HTTP_METHODS.contains(&method) {
        errs.push(
            field,
            format!(
                "unsupported HTTP method {method:?}: must be one of {}",
                HTTP_METHODS.join(", ")
            ),
        );
    }
}

fn label_map(errs: &mut ValidationErrors, field: &str, labels: Option<&BTreeMap<String, String>>) {
    for (key, value) in labels.into_iter().flatten() {
        if !is_qualified_name(key) {
            errs.push(
                format!("{field}[{key}]"),
                "label keys must be qualified names ([prefix/]name)",
            );
        }
        if !is_label_value(value) {
            errs.push(
                format!("{field}[{key}]"),
                format!("label values are at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric, got {value:?}"),
            );
        }
    }
}

fn is_kafka_topic(topic: &str) -> bool {
    let bytes = topic.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Well-formedness of a POSIX extended regular expression: balanced groups and brackets, no
/// repetition without an operand, no trailing escape.
fn check_posix_regex(pattern: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut chars = pattern.chars().peekable();
    let mut previous_is_operand = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if chars.next().is_none() {
                    return Err("trailing backslash".into());
                }
                previous_is_operand = true;
            }
            '[' => {
                // A ']' right after '[' or '[^' is a literal.
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
                if !chars.by_ref().any(|c| c == ']') {
                    return Err("missing ']'".into());
                }
                previous_is_operand = true;
            }
            '(' => {
                depth += 1;
                previous_is_operand = false;
            }
            ')' => {
                depth = depth.checked_sub(1).ok_or("unmatched ')'")?;
                previous_is_operand = true;
            }
            '*' | '+' | '?' | '{' => {
                if !previous_is_operand {
                    return Err(format!("repetition operator {c:?} without an operand"));
                }
                if c == '{' && !chars.by_ref().any(|c| c == '}') {
                    return Err("missing '}'".into());
                }
            }
            '|' => previous_is_operand = false,
            _ => previous_is_operand = true,
        }
    }
    if depth > 0 {
        return Err("missing ')'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_posix_regex;

    #[test]
    fn posix_regex_well_formedness() {
        for ok in ["/", "/foo/.*", "/a(b|c)+", "/[]a]x", "/x{1,2}", "/\\.json$"] {
            assert!(check_posix_regex(ok).is_ok(), "{ok}");
        }
        for bad in ["/(a", "/a)", "/[a", "/a\\", "/(*)", "/a|*"] {
            assert!(check_posix_regex(bad).is_err(), "{bad}");
        }
    }
}
