//! The CustomResourceDefinitions Rivulet serves, generated from the types of this crate.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;

use crate::validation::DNS1123_LABEL_PATTERN;
use crate::{
    CanaryConfig, Environment, Function, HTTPTrigger, KubernetesWatchTrigger, MessageQueueTrigger,
    Package, TimeTrigger,
};

/// Errors rendering CRDs.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The CRD could not be serialized to YAML.
    #[error("cannot render CRD {name} as YAML: {source}")]
    Yaml {
        /// CRD name.
        name: String,
        /// Cause.
        source: serde_yaml_ng::Error,
    },
}

/// The eight `fission.io/v1` CRDs, in Fission's apply order.
///
/// Status subresources follow Fission v1.22: Environment, Function, HTTPTrigger,
/// KubernetesWatchTrigger and TimeTrigger have one; Package and CanaryConfig keep their status in
/// the main resource, because Fission clients write it on create; MessageQueueTrigger has none.
pub fn fission_crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        Environment::crd(),
        Package::crd(),
        Function::crd(),
        HTTPTrigger::crd(),
        KubernetesWatchTrigger::crd(),
        TimeTrigger::crd(),
        MessageQueueTrigger::crd(),
        CanaryConfig::crd(),
    ];
    for crd in &mut crds {
        restrict_name_to_dns1123_label(crd);
        if matches!(crd.spec.names.kind.as_str(), "Package" | "CanaryConfig") {
            for version in &mut crd.spec.versions {
                if let Some(sub) = version.subresources.as_mut() {
                    sub.status = None;
                }
            }
        }
    }
    crds
}

/// Fission's webhook requires every name to be a DNS-1123 label; a structural schema may restrict
/// `metadata.name` at the root, so the API server itself rejects other names.
fn restrict_name_to_dns1123_label(crd: &mut CustomResourceDefinition) {
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let properties = schema.properties.get_or_insert_with(Default::default);
        let name = JSONSchemaProps {
            type_: Some("string".into()),
            max_length: Some(63),
            pattern: Some(DNS1123_LABEL_PATTERN.into()),
            ..JSONSchemaProps::default()
        };
        properties.insert(
            "metadata".into(),
            JSONSchemaProps {
                type_: Some("object".into()),
                properties: Some([("name".to_owned(), name)].into()),
                ..JSONSchemaProps::default()
            },
        );
    }
}

/// Liqo's `NamespaceOffloading` CRD in one version (`v1alpha1` or `v1beta1`), for clusters that
/// simulate Liqo; a real Liqo installation brings its own.
pub fn namespace_offloading_crd(v1alpha1: bool) -> CustomResourceDefinition {
    if v1alpha1 {
        crate::liqo::v1alpha1::NamespaceOffloading::crd()
    } else {
        crate::liqo::v1beta1::NamespaceOffloading::crd()
    }
}

/// File name of a CRD in `crds/`: `<group>_<plural>.yaml`, as controller-gen names them.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// A CRD as a YAML document (without the leading `---`).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdError> {
    serde_yaml_ng::to_string(crd).map_err(|source| CrdError::Yaml {
        name: crd.metadata.name.clone().unwrap_or_default(),
        source,
    })
}

/// The name of the kustomization that lists `crds/`'s files, so `deploy/` (kustomize, built into
/// kubectl) installs the CRDs from where they are generated instead of a copy.
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

/// `crds/kustomization.yaml`: every CRD file of [`fission_crds`], in order.
pub fn kustomization_yaml() -> String {
    let mut out = String::from(
        "# Generated with the CRDs (`rivulet crds --out-dir crds`); deploy/ includes this directory.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    for crd in fission_crds() {
        out.push_str("  - ");
        out.push_str(&file_name(&crd));
        out.push('\n');
    }
    out
}

/// Every Fission CRD as one multi-document YAML stream.
pub fn fission_crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in fission_crds() {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}
