//! Where clients find the storage service (docs/storage.md "Finding the service"), as Fission's
//! CLI does: `FISSION_STORAGESVC_URL`, else the Service labelled `application=fission-storage`.
//!
//! Two URLs matter: where *this* process talks to the service (`access`), and the base written
//! into Packages, which every fetcher must reach (`archive_base`). In a cluster they differ (the
//! CLI port-forwards; pods use `http://storagesvc.fission`); `rivulet up` publishes one URL that
//! both the host and the pods reach, as an annotation on its Service.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use crate::error::StorageError;

/// Fission's override of the service URL.
pub const URL_ENV: &str = "FISSION_STORAGESVC_URL";
/// Fission's label on the storagesvc Service (and pods).
pub const APP_LABEL: (&str, &str) = ("application", "fission-storage");
/// A URL both clients and pods reach; set by `rivulet up` (no cluster DNS locally).
pub const URL_ANNOTATION: &str = "rivulet.io/storagesvc-url";
/// Fission's Service name and namespace.
pub const SERVICE_NAME: &str = "storagesvc";
pub const NAMESPACE: &str = "fission";

/// How this process reaches the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    Direct(String),
    /// Only inside the cluster's network: port-forward to a pod behind this Service (Fission's
    /// CLI forwards to `application=fission-storage`).
    PortForward {
        namespace: String,
        service: String,
        port: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub access: Access,
    /// Base of the archive URLs recorded in Packages (`<base>/v1/archive?id=`).
    pub archive_base: String,
}

/// Finds the service: `FISSION_STORAGESVC_URL` (its value, or an unreadable cluster, wins for
/// access), then the labelled Services in every namespace.
pub async fn discover(client: &kube::Client) -> Result<Endpoint, StorageError> {
    let env = std::env::var(URL_ENV).ok().filter(|v| !v.is_empty());
    let services: Api<Service> = Api::all(client.clone());
    let selector = format!("{}={}", APP_LABEL.0, APP_LABEL.1);
    match services
        .list(&ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => endpoint_from(env, &list.items),
        Err(err) => match env {
            Some(url) => {
                tracing::debug!(error = %err, "cannot list Services; using {URL_ENV}");
                endpoint_from(Some(url), &[])
            }
            None => Err(err.into()),
        },
    }
}

/// The decision, pure: an explicit URL, then exactly one labelled Service.
pub fn endpoint_from(env: Option<String>, services: &[Service]) -> Result<Endpoint, StorageError> {
    let service = match services {
        [] => None,
        [one] => Some(one),
        many => {
            let names: Vec<String> = many.iter().map(service_dns).collect();
            return Err(StorageError::ManyServices(names.join(", ")));
        }
    };
    let annotated = service.and_then(|s| {
        s.metadata
            .annotations
            .as_ref()?
            .get(URL_ANNOTATION)
            .filter(|u| !u.is_empty())
            .cloned()
    });
    let in_cluster = service.map(|s| format!("http://{}", service_dns(s)));
    let archive_base = annotated
        .clone()
        .or(in_cluster)
        .or_else(|| env.clone())
        .ok_or(StorageError::NoService)?;
    let access = match (env, annotated, service) {
        (Some(url), _, _) | (None, Some(url), _) => Access::Direct(url),
        (None, None, Some(s)) => Access::PortForward {
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            service: s.metadata.name.clone().unwrap_or_default(),
            port: s
                .spec
                .as_ref()
                .and_then(|spec| spec.ports.as_ref()?.first())
                .and_then(|p| u16::try_from(p.target_port_number()).ok())
                .unwrap_or(crate::DEFAULT_PORT),
        },
        (None, None, None) => return Err(StorageError::NoService),
    };
    Ok(Endpoint {
        access,
        archive_base: archive_base.trim_end_matches('/').to_owned(),
    })
}

/// `<name>.<namespace>`, as Fission's `GetSvcName`.
fn service_dns(service: &Service) -> String {
    format!(
        "{}.{}",
        service.metadata.name.as_deref().unwrap_or_default(),
        service.metadata.namespace.as_deref().unwrap_or_default()
    )
}

trait TargetPort {
    fn target_port_number(&self) -> i32;
}

impl TargetPort for ServicePort {
    fn target_port_number(&self) -> i32 {
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        match &self.target_port {
            Some(IntOrString::Int(port)) => *port,
            _ => self.port,
        }
    }
}

/// The Service `rivulet up` publishes: Fission's name, namespace and label, no selector (the
/// service is a listener of the `rivulet up` process), and `url` as the annotation.
pub fn local_service(url: &str, port: u16) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(SERVICE_NAME.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([(
                APP_LABEL.0.to_owned(),
                APP_LABEL.1.to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                URL_ANNOTATION.to_owned(),
                url.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: i32::from(port),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Applies [`local_service`] (and its namespace), so the CLI and `fission` find this service.
pub async fn publish(client: &kube::Client, url: &str, port: u16) -> Result<(), StorageError> {
    let params = PatchParams::apply("rivulet-storage").force();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .patch(NAMESPACE, &params, &Patch::Apply(&namespace))
        .await?;
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    services
        .patch(
            SERVICE_NAME,
            &params,
            &Patch::Apply(&local_service(url, port)),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_service() -> Service {
        let mut service = local_service("unused", 80);
        if let Some(a) = service.metadata.annotations.as_mut() {
            a.clear();
        }
        if let Some(spec) = service.spec.as_mut() {
            spec.ports = Some(vec![ServicePort {
                port: 80,
                target_port: Some(
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8000),
                ),
                ..ServicePort::default()
            }]);
        }
        service
    }

    #[test]
    fn the_environment_wins_for_access_and_the_service_names_the_archives() {
        let endpoint =
            endpoint_from(Some("http://127.0.0.1:9000".into()), &[cluster_service()]).unwrap();
        assert_eq!(
            endpoint.access,
            Access::Direct("http://127.0.0.1:9000".into())
        );
        assert_eq!(endpoint.archive_base, "http://storagesvc.fission");
        let alone = endpoint_from(Some("http://h:1/".into()), &[]).unwrap();
        assert_eq!(alone.archive_base, "http://h:1");
    }

    #[test]
    fn a_cluster_service_needs_a_port_forward_to_its_target_port() {
        let endpoint = endpoint_from(None, &[cluster_service()]).unwrap();
        assert_eq!(
            endpoint.access,
            Access::PortForward {
                namespace: "fission".into(),
                service: "storagesvc".into(),
                port: 8000
            }
        );
    }

    #[test]
    fn a_local_service_is_reached_at_its_annotation() {
        let url = "http://169.254.7.1:8000";
        let endpoint = endpoint_from(None, &[local_service(url, 8000)]).unwrap();
        assert_eq!(endpoint.access, Access::Direct(url.into()));
        assert_eq!(endpoint.archive_base, url);
    }

    #[test]
    fn none_or_many_services_are_errors_naming_the_fix() {
        let err = endpoint_from(None, &[]).unwrap_err().to_string();
        assert!(err.contains(URL_ENV), "{err}");
        let mut other = cluster_service();
        other.metadata.namespace = Some("other".into());
        let err = endpoint_from(None, &[cluster_service(), other])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("storagesvc.fission, storagesvc.other"),
            "{err}"
        );
    }
}
