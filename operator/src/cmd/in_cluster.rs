//! Start-up facts the controller reads from the cluster it runs in, so that
//! `kubectl apply -k deploy/` needs nothing prepared by hand and nothing kept in step on upgrades:
//! the fetcher installation key (a Secret the first controller creates) and the image of the
//! fetcher sidecar (the controller's own image, read from its Pod).

use anyhow::{Context, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use rivulet_api::specialize::FetcherKey;

/// The key in the fetcher key Secret's `data` (mounted as a file of that name by the router).
pub const FETCHER_KEY_DATA: &str = "key";

/// The installation key held in Secret `namespace/name`; created with 32 random bytes when it
/// does not exist yet (two replicas starting together: the second reads the first's).
pub async fn fetcher_key_secret(
    client: &Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<FetcherKey> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = || format!("cannot read the fetcher key Secret {namespace}/{name}");
    let existing = secrets.get_opt(name).await.with_context(read)?;
    let secret = if let Some(secret) = existing {
        secret
    } else {
        match secrets
            .create(&PostParams::default(), &new_key_secret(name)?)
            .await
        {
            Ok(created) => {
                tracing::info!("created the fetcher key Secret {namespace}/{name}");
                created
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                secrets.get(name).await.with_context(read)?
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot create the fetcher key Secret {namespace}/{name}")
                });
            }
        }
    };
    let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(FETCHER_KEY_DATA)) else {
        bail!("the fetcher key Secret {namespace}/{name} has no data.{FETCHER_KEY_DATA}");
    };
    FetcherKey::from_file_bytes(&bytes.0).with_context(|| {
        format!("the fetcher key Secret {namespace}/{name}, data.{FETCHER_KEY_DATA}")
    })
}

fn new_key_secret(name: &str) -> anyhow::Result<Secret> {
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "rivulet".to_owned())].into()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                FETCHER_KEY_DATA.to_owned(),
                ByteString(super::common::new_fetcher_key_text()?.into_bytes()),
            )]
            .into(),
        ),
        ..Secret::default()
    })
}

/// The image of container `container` in this controller's own Pod `namespace/name`.
pub async fn own_image(
    client: &Client,
    namespace: &str,
    name: &str,
    container: &str,
) -> anyhow::Result<String> {
    let pod = Api::<Pod>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .with_context(|| format!("cannot read this controller's Pod {namespace}/{name}"))?;
    pod.spec
        .iter()
        .flat_map(|spec| &spec.containers)
        .find(|c| c.name == container)
        .and_then(|c| c.image.clone())
        .with_context(|| {
            format!("this controller's Pod {namespace}/{name} has no container {container:?} with an image")
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::PostParams;
    use rivulet_testing::TestCluster;

    use super::*;

    async fn namespace(client: &Client, name: &str) {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_fetcher_key_secret_is_created_once_and_then_read() {
        let tc = TestCluster::start().await.unwrap();
        namespace(&tc.client, "fission").await;
        let first = fetcher_key_secret(&tc.client, "fission", "rivulet-fetcher-key")
            .await
            .unwrap();
        let again = fetcher_key_secret(&tc.client, "fission", "rivulet-fetcher-key")
            .await
            .unwrap();
        assert_eq!(first.token_for("uid"), again.token_for("uid"));
        let stored = Api::<Secret>::namespaced(tc.client.clone(), "fission")
            .get("rivulet-fetcher-key")
            .await
            .unwrap();
        let text = &stored.data.unwrap()[FETCHER_KEY_DATA].0;
        // 64 hex digits and a newline, what `--fetcher-key-file` reads.
        assert_eq!(text.len(), 65);
        tc.shutdown().await;
    }

    #[tokio::test]
    async fn a_fetcher_key_secret_without_its_key_is_an_error_naming_it() {
        let tc = TestCluster::start().await.unwrap();
        namespace(&tc.client, "fission").await;
        let mut empty = new_key_secret("broken").unwrap();
        empty.data = Some([("other".to_owned(), ByteString(b"x".to_vec()))].into());
        Api::<Secret>::namespaced(tc.client.clone(), "fission")
            .create(&PostParams::default(), &empty)
            .await
            .unwrap();
        let error = fetcher_key_secret(&tc.client, "fission", "broken")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the fetcher key Secret fission/broken has no data.key"
        );
        let error = own_image(&tc.client, "fission", "gone", "controller")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot read this controller's Pod fission/gone"
        );
        tc.shutdown().await;
    }
}
