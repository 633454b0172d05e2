//! Fission's specialize wire types (`[F] pkg/fetcher/types.go`), with Fission's exact JSON names:
//! what the router (and a newdeploy pod at start) sends to a pod's fetcher, and what the fetcher
//! passes on to the runtime. Shared by the fetcher, the router and the reconcilers.
//!
//! Go's `encoding/json` fills missing keys with zero values and writes nil slices as `null`, so
//! every field defaults and list fields accept `null`. The router builds these to call the fetcher.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer, Serialize};

/// Body of `POST /specialize`: fetch the code, then load it into the runtime.
///
/// Fission's Go struct has no JSON tags on these two fields, hence the capitalised keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpecializeRequest {
    #[serde(rename = "FetchReq", default)]
    pub fetch_req: FetchRequest,
    #[serde(rename = "LoadReq", default)]
    pub load_req: FunctionLoadRequest,
}

/// Body of `POST /fetch` and the `FetchReq` half of a specialize request
/// (Fission's `FunctionFetchRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FetchRequest {
    #[serde(rename = "fetchType", default)]
    pub fetch_type: FetchType,
    /// Namespace, name (and resourceVersion, informational only) of the Package.
    #[serde(default)]
    pub package: ObjectMeta,
    /// Download address for [`FetchType::Url`].
    #[serde(default)]
    pub url: String,
    /// Used by Fission's builder flow only; carried for wire compatibility.
    #[serde(rename = "storagesvcurl", default)]
    pub storage_svc_url: String,
    /// Name of the file or directory created under the code directory (`/userfunc`).
    #[serde(default)]
    pub filename: String,
    #[serde(rename = "secretList", default, deserialize_with = "null_as_default")]
    pub secrets: Vec<ObjectReference>,
    #[serde(
        rename = "configMapList",
        default,
        deserialize_with = "null_as_default"
    )]
    pub config_maps: Vec<ObjectReference>,
    /// Keep a zip archive as a file instead of extracting it.
    #[serde(rename = "keeparchive", default)]
    pub keep_archive: bool,
}

/// Fission's name for [`FetchRequest`].
pub type FunctionFetchRequest = FetchRequest;

/// The `LoadReq` half of a specialize request, sent unchanged to the runtime's `/v2/specialize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionLoadRequest {
    /// Absolute in-pod path of the code, e.g. `/userfunc/deployarchive`.
    #[serde(rename = "filepath", default)]
    pub file_path: String,
    /// Environment-specific entrypoint, e.g. `hello.main`.
    #[serde(rename = "functionName", default)]
    pub function_name: String,
    #[serde(default)]
    pub url: String,
    /// The Function's metadata (no JSON tag in Fission, hence the key).
    #[serde(rename = "FunctionMetadata", default)]
    pub function_metadata: Option<ObjectMeta>,
    /// Environment version: `>= 2` uses `/v2/specialize`, otherwise `/specialize`.
    #[serde(rename = "envVersion", default)]
    pub env_version: i32,
}

/// A `{namespace, name}` reference to a Secret or ConfigMap (Fission's `SecretReference` and
/// `ConfigMapReference`): the same type as `Function.spec.secrets` items. An empty namespace means
/// the function's namespace.
pub type ObjectReference = crate::SecretOrConfigMapRef;

/// What to fetch (`[F] const.go`): `FETCH_SOURCE=0`, `FETCH_DEPLOYMENT=1`, `FETCH_URL=2`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum FetchType {
    /// The Package's `spec.source` archive (Go's zero value).
    #[default]
    Source,
    /// The Package's `spec.deployment` archive; requires a deployable `buildstatus`.
    Deployment,
    /// The request's own `url`.
    Url,
}

impl TryFrom<i64> for FetchType {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Self::Source),
            1 => Ok(Self::Deployment),
            2 => Ok(Self::Url),
            other => Err(format!(
                "unknown fetchType {other} (0 = source, 1 = deployment, 2 = url)"
            )),
        }
    }
}

impl From<FetchType> for i64 {
    fn from(value: FetchType) -> Self {
        match value {
            FetchType::Source => 0,
            FetchType::Deployment => 1,
            FetchType::Url => 2,
        }
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The request Fission's executor sends for a v3 environment (reference/fission.md §2.4),
    /// as Go marshals it: nil slices are `null`, the package ref carries only three fields.
    const FISSION_SPECIALIZE: &str = r#"{
        "FetchReq": {"fetchType": 1,
                     "package": {"name": "hello-pkg", "namespace": "default", "resourceVersion": "4711"},
                     "url": "", "storagesvcurl": "", "filename": "deployarchive",
                     "secretList": null, "configMapList": null, "keeparchive": false},
        "LoadReq": {"filepath": "/userfunc/deployarchive", "functionName": "hello.main", "url": "",
                    "FunctionMetadata": {"name": "hello", "namespace": "default", "uid": "u-1",
                                         "creationTimestamp": null},
                    "envVersion": 3}
    }"#;

    #[test]
    fn decodes_fissions_specialize_request() {
        let req: FunctionSpecializeRequest = serde_json::from_str(FISSION_SPECIALIZE).unwrap();
        assert_eq!(req.fetch_req.fetch_type, FetchType::Deployment);
        assert_eq!(req.fetch_req.package.name.as_deref(), Some("hello-pkg"));
        assert_eq!(req.fetch_req.package.namespace.as_deref(), Some("default"));
        assert_eq!(req.fetch_req.filename, "deployarchive");
        assert!(req.fetch_req.secrets.is_empty());
        assert!(!req.fetch_req.keep_archive);
        assert_eq!(req.load_req.file_path, "/userfunc/deployarchive");
        assert_eq!(req.load_req.function_name, "hello.main");
        assert_eq!(req.load_req.env_version, 3);
        let meta = req.load_req.function_metadata.as_ref().unwrap();
        assert_eq!(meta.uid.as_deref(), Some("u-1"));
    }

    #[test]
    fn encodes_with_fissions_key_names() {
        let req: FunctionSpecializeRequest = serde_json::from_str(FISSION_SPECIALIZE).unwrap();
        let value = serde_json::to_value(&req).unwrap();
        let fetch = &value["FetchReq"];
        for key in [
            "fetchType",
            "package",
            "url",
            "storagesvcurl",
            "filename",
            "secretList",
            "configMapList",
            "keeparchive",
        ] {
            assert!(fetch.get(key).is_some(), "FetchReq lacks {key}: {fetch}");
        }
        let load = &value["LoadReq"];
        for key in [
            "filepath",
            "functionName",
            "url",
            "FunctionMetadata",
            "envVersion",
        ] {
            assert!(load.get(key).is_some(), "LoadReq lacks {key}: {load}");
        }
        assert_eq!(fetch["fetchType"], json!(1));
        // A second trip changes nothing.
        let again: FunctionSpecializeRequest = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(again, req);
        assert_eq!(serde_json::to_value(&again).unwrap(), value);
    }

    #[test]
    fn decodes_secret_and_configmap_lists() {
        let req: FetchRequest = serde_json::from_value(json!({
            "fetchType": 2, "url": "http://example.invalid/code.zip", "filename": "user",
            "secretList": [{"namespace": "ns", "name": "creds"}],
            "configMapList": [{"namespace": "ns", "name": "settings"}],
            "keeparchive": true
        }))
        .unwrap();
        assert_eq!(req.fetch_type, FetchType::Url);
        assert_eq!(
            req.secrets,
            vec![ObjectReference {
                namespace: "ns".into(),
                name: "creds".into()
            }]
        );
        assert_eq!(req.config_maps[0].name, "settings");
        assert!(req.keep_archive);
    }

    #[test]
    fn missing_keys_take_go_zero_values() {
        let req: FunctionSpecializeRequest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(req, FunctionSpecializeRequest::default());
        assert_eq!(req.fetch_req.fetch_type, FetchType::Source);
        assert_eq!(req.load_req.env_version, 0);
    }

    #[test]
    fn unknown_fetch_type_is_refused_with_the_value() {
        let err = serde_json::from_value::<FetchRequest>(json!({"fetchType": 7})).unwrap_err();
        assert!(err.to_string().contains("unknown fetchType 7"), "{err}");
    }

    #[test]
    fn nil_function_metadata_is_null() {
        let value = serde_json::to_value(FunctionLoadRequest::default()).unwrap();
        assert_eq!(value["FunctionMetadata"], Value::Null);
    }
}
