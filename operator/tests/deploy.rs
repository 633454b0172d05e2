//! `deploy/` as kubectl renders it (`kubectl kustomize`, the kustomize built into kubectl): every
//! variant renders, every workload meets the restricted Pod Security profile and has probes and
//! requests, and the RBAC is exactly the audited set (snapshot; docs/install.md "RBAC").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::serde::Deserialize as _;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn render(dir: &str) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo().join(dir))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap()
}

#[test]
fn every_variant_renders_the_crds_and_the_control_plane() {
    for dir in ["deploy", "deploy/overlays/liqo", "deploy/overlays/nodeport"] {
        let objects = render(dir);
        assert_eq!(
            of_kind(&objects, "CustomResourceDefinition").len(),
            8,
            "{dir}"
        );
        let deployments: Vec<_> = of_kind(&objects, "Deployment")
            .into_iter()
            .map(name)
            .collect();
        assert_eq!(
            deployments,
            ["rivulet-controller", "rivulet-router"],
            "{dir}"
        );
        for o in &objects {
            let namespaced = !matches!(
                o["kind"].as_str().unwrap(),
                "CustomResourceDefinition" | "Namespace" | "ClusterRole" | "ClusterRoleBinding"
            );
            if namespaced {
                assert_eq!(o["metadata"]["namespace"], "fission", "{dir}: {}", name(o));
            }
        }
    }
}

#[test]
fn workloads_are_restricted_probed_and_sized() {
    let objects = render("deploy");
    for deployment in of_kind(&objects, "Deployment") {
        let who = name(deployment);
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{who}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{who}"
        );
        assert_eq!(
            pod["serviceAccountName"], who,
            "{who}: its own ServiceAccount"
        );
        for c in pod["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{who}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{who}");
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{who}"
            );
            assert!(
                c["livenessProbe"].is_object() && c["readinessProbe"].is_object(),
                "{who}"
            );
            assert!(c["resources"]["requests"]["cpu"].is_string(), "{who}");
            assert!(c["resources"]["limits"]["memory"].is_string(), "{who}");
            assert_eq!(c["image"], "ghcr.io/rivulet-dev/rivulet:0.1.0", "{who}");
        }
        // Secret volumes are root-owned: only a group-readable mode and the pod's fsGroup let
        // the non-root user read them, and nobody else.
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            if volume["secret"].is_object() {
                assert_eq!(volume["secret"]["defaultMode"], 0o440, "{who}");
                assert_eq!(pod["securityContext"]["fsGroup"], 65532, "{who}");
            }
        }
        let budget = of_kind(&objects, "PodDisruptionBudget")
            .into_iter()
            .find(|b| name(b) == who);
        assert!(budget.is_some(), "{who} has a PodDisruptionBudget");
    }
}

/// The rules of every Role and ClusterRole, one line per rule, as `kubectl describe` would list
/// them; no wildcard anywhere.
fn rbac_summary(objects: &[Value]) -> String {
    let mut out = String::new();
    for o in objects {
        let kind = o["kind"].as_str().unwrap();
        if kind != "ClusterRole" && kind != "Role" {
            continue;
        }
        writeln!(out, "{kind} {}", name(o)).unwrap();
        for rule in o["rules"].as_array().unwrap() {
            let list = |key: &str| {
                rule[key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().unwrap())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            };
            for key in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(
                    !list(key).contains('*'),
                    "{kind} {}: wildcard in {key}",
                    name(o)
                );
            }
            let names = list("resourceNames");
            writeln!(
                out,
                "  [{}] {} : {}{}",
                list("apiGroups"),
                list("resources"),
                list("verbs"),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" (only {names})")
                }
            )
            .unwrap();
        }
    }
    out
}

#[test]
fn rbac_is_the_audited_least_privilege() {
    let objects = render("deploy/overlays/liqo");
    let summary = rbac_summary(&objects);
    // `update` is the Lease's and the owner-reference finalizers' only; nothing may escalate.
    for line in summary.lines().filter(|l| l.contains("update")) {
        assert!(
            line.contains("leases") || line.contains("/finalizers"),
            "{line}"
        );
    }
    // Verbs follow " : " (a resource such as rolebindings contains "bind").
    let verbs: Vec<&str> = summary
        .lines()
        .filter_map(|l| l.split_once(" : "))
        .flat_map(|(_, v)| v.split(" (only").next().unwrap_or_default().split(','))
        .collect();
    assert!(verbs.contains(&"watch"), "verbs parsed: {verbs:?}");
    for verb in ["escalate", "bind", "impersonate", "deletecollection"] {
        assert!(!verbs.contains(&verb), "{verb} granted:\n{summary}");
    }
    // Every binding names a ServiceAccount of the control plane and a role that exists.
    for binding in of_kind(&objects, "ClusterRoleBinding")
        .into_iter()
        .chain(of_kind(&objects, "RoleBinding"))
    {
        let role = binding["roleRef"]["name"].as_str().unwrap();
        assert!(
            objects
                .iter()
                .any(|o| o["kind"] == binding["roleRef"]["kind"] && name(o) == role),
            "{} binds a missing {role}",
            name(binding)
        );
        for subject in binding["subjects"].as_array().unwrap() {
            assert_eq!(subject["kind"], "ServiceAccount");
            assert_eq!(subject["namespace"], "fission");
        }
    }
    insta::assert_snapshot!(summary);
}

#[test]
fn the_dockerfile_builds_the_image_deploy_runs() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("--bin rivulet"));
    assert!(
        dockerfile.contains("USER 65532:65532"),
        "runs as the uid deploy/ requires"
    );
    let deployments = render("deploy");
    let uid = &of_kind(&deployments, "Deployment")[0]["spec"]["template"]["spec"]["securityContext"]
        ["runAsUser"];
    assert_eq!(uid, 65532);
    assert!(Path::new(&repo().join(".dockerignore")).exists());
}
