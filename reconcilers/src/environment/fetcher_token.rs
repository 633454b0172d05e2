//! The fetcher token of an Environment's warm pods (pure builders).
//!
//! The token (`rivulet_api::specialize::token`) is written into a Secret owned by the Environment
//! and mounted read-only into the fetcher container only, which is started with `--token-file`;
//! the runtime container, where user code runs, does not mount it. The router derives the same
//! token from the installation key, so it needs no access to Secrets.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{PodSpec, Secret, SecretVolumeSource, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rivulet_api::Environment;
use rivulet_api::keys::fission_labels;
use rivulet_api::specialize::FetcherKey;
use rivulet_api::specialize::token::{
    TOKEN_MOUNT_DIR, TOKEN_SECRET_KEY, token_file, token_secret_name,
};

use super::pool_pod::{PoolPodError, identity, owned_by};

/// Name of the pod volume holding the token.
const VOLUME: &str = "rivulet-fetcher-token";
/// Name of the fetcher container (Fission's).
const FETCHER_CONTAINER: &str = "fetcher";

/// The token Secret of `env`: one key, `token`, owned by the Environment (deleted with it).
pub fn token_secret(env: &Environment, key: &FetcherKey) -> Result<Secret, PoolPodError> {
    let (name, namespace, uid) = identity(env)?;
    let labels = BTreeMap::from([
        (fission_labels::ENVIRONMENT_NAME.to_owned(), name.to_owned()),
        (fission_labels::ENVIRONMENT_UID.to_owned(), uid.to_owned()),
    ]);
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(token_secret_name(name)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![owned_by(name, uid)]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            TOKEN_SECRET_KEY.to_owned(),
            ByteString(key.token_for(uid).into_bytes()),
        )])),
        ..Secret::default()
    })
}

/// Mounts `env`'s token Secret into the fetcher container of `pod` and points the fetcher at it.
pub fn require_token(pod: &mut PodSpec, env_name: &str) {
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(token_secret_name(env_name)),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    });
    for fetcher in pod
        .containers
        .iter_mut()
        .filter(|c| c.name == FETCHER_CONTAINER)
    {
        fetcher
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: VOLUME.into(),
                mount_path: TOKEN_MOUNT_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        fetcher
            .args
            .get_or_insert_with(Vec::new)
            .splice(0..0, ["--token-file".to_owned(), token_file()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        let mut env = Environment::new(
            "python",
            serde_json::from_value(serde_json::json!({
                "version": 2, "runtime": {"image": "fission/python-env"}
            }))
            .unwrap(),
        );
        env.metadata.namespace = Some("fns".into());
        env.metadata.uid = Some("uid-1".into());
        env
    }

    #[test]
    fn the_secret_holds_the_environments_token_and_is_owned_by_it() {
        let key = FetcherKey::from_file_bytes(&[b'k'; 32]).unwrap();
        let secret = token_secret(&env(), &key).unwrap();
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("python.rivulet-fetcher-token")
        );
        assert_eq!(secret.metadata.namespace.as_deref(), Some("fns"));
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Environment", "uid-1")
        );
        let data = secret.data.unwrap();
        assert_eq!(data["token"].0, key.token_for("uid-1").into_bytes());

        let mut no_uid = env();
        no_uid.metadata.uid = None;
        assert!(matches!(
            token_secret(&no_uid, &key),
            Err(PoolPodError::MissingMetadata("uid"))
        ));
    }
}
