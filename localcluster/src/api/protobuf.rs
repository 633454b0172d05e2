//! Request bodies in Kubernetes' protobuf encoding, for the kinds `kubectl create <kind>` sends
//! that way (client-go's typed clients always encode bodies as protobuf and do not fall back to
//! JSON on 415). Only the messages those commands produce are described; a field outside the
//! description is refused (415) rather than silently dropped.
//!
//! Wire format: `k8s\0` + `runtime.Unknown{typeMeta=1{apiVersion=1, kind=2}, raw=2}`, `raw` being
//! the object's proto2 message (KK `staging/src/k8s.io/api/core/v1/generated.proto`).

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::api::status::{ApiError, ApiResult};

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\x00";

/// How a field is decoded into JSON.
#[derive(Debug, Clone, Copy)]
enum Ty {
    /// `string`; empty = absent (omitempty).
    Str,
    /// `repeated string`.
    Strs,
    /// An integer without presence; 0 = absent.
    Int,
    /// A `*int32`/`*int64` (presence: written means set).
    OptInt,
    /// `bool` without presence; false = absent.
    Bool,
    /// `intstr.IntOrString{type=1, intVal=2, strVal=3}`.
    IntOrString,
    /// `*bool` (presence: written means set).
    OptBool,
    /// `map<string,string>`.
    StrMap,
    /// `map<string,bytes>`, as base64 strings (the JSON form of `[]byte`).
    BytesMap,
    /// A nested message.
    Msg(&'static [Field]),
    /// `repeated` nested message.
    Msgs(&'static [Field]),
    /// Server-set or ignorable (timestamps, managedFields).
    Ignore,
}

#[derive(Debug)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field { num, name, ty }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::OptBool),
    f(7, "blockOwnerDeletion", Ty::OptBool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(4, "selfLink", Ty::Ignore),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Ignore),
    f(9, "deletionTimestamp", Ty::Ignore),
    f(10, "deletionGracePeriodSeconds", Ty::Ignore),
    f(11, "labels", Ty::StrMap),
    f(12, "annotations", Ty::StrMap),
    f(13, "ownerReferences", Ty::Msgs(OWNER_REFERENCE)),
    f(14, "finalizers", Ty::Strs),
    f(17, "managedFields", Ty::Ignore),
];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "fieldPath", Ty::Str),
];

const LOCAL_OBJECT_REFERENCE: &[Field] = &[f(1, "name", Ty::Str)];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(&[f(1, "finalizers", Ty::Strs)])),
    f(3, "status", Ty::Ignore),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::StrMap),
    f(3, "binaryData", Ty::BytesMap),
    f(4, "immutable", Ty::OptBool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::BytesMap),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::StrMap),
    f(5, "immutable", Ty::OptBool),
];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "secrets", Ty::Msgs(OBJECT_REFERENCE)),
    f(3, "imagePullSecrets", Ty::Msgs(LOCAL_OBJECT_REFERENCE)),
    f(4, "automountServiceAccountToken", Ty::OptBool),
];

/// `kubectl create token`'s request.
const TOKEN_REQUEST: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "audiences", Ty::Strs),
            f(
                3,
                "boundObjectRef",
                Ty::Msg(&[
                    f(1, "kind", Ty::Str),
                    f(2, "apiVersion", Ty::Str),
                    f(3, "name", Ty::Str),
                    f(4, "uid", Ty::Str),
                ]),
            ),
            f(4, "expirationSeconds", Ty::OptInt),
        ]),
    ),
    f(3, "status", Ty::Ignore),
];

/// `authorization.k8s.io/v1` ResourceAttributes (KK `staging/src/k8s.io/api/authorization/v1/
/// generated.proto`); the selector attributes are not evaluated, so ignored.
const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
    f(8, "fieldSelector", Ty::Ignore),
    f(9, "labelSelector", Ty::Ignore),
];

const NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];

/// What `kubectl auth can-i <verb> <resource>` sends.
const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
            f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
        ]),
    ),
    f(3, "status", Ty::Ignore),
];

/// What `kubectl auth can-i --list` sends.
const SELF_SUBJECT_RULES_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(&[f(1, "namespace", Ty::Str)])),
    f(3, "status", Ty::Ignore),
];

const SUBJECT_ACCESS_REVIEW_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
    f(3, "user", Ty::Str),
    f(4, "groups", Ty::Strs),
    f(5, "extra", Ty::Ignore),
    f(6, "uid", Ty::Str),
];

const SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SUBJECT_ACCESS_REVIEW_SPEC)),
    f(3, "status", Ty::Ignore),
];

const LABEL_SELECTOR: &[Field] = &[f(1, "matchLabels", Ty::StrMap)];

/// `rbac.authorization.k8s.io/v1` (KK `staging/src/k8s.io/api/rbac/v1/generated.proto`), what
/// `kubectl create role|clusterrole|rolebinding|clusterrolebinding` sends.
const POLICY_RULE: &[Field] = &[
    f(1, "verbs", Ty::Strs),
    f(2, "apiGroups", Ty::Strs),
    f(3, "resources", Ty::Strs),
    f(4, "resourceNames", Ty::Strs),
    f(5, "nonResourceURLs", Ty::Strs),
];

const ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "rules", Ty::Msgs(POLICY_RULE)),
];

const CLUSTER_ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "rules", Ty::Msgs(POLICY_RULE)),
    f(
        3,
        "aggregationRule",
        Ty::Msg(&[f(1, "clusterRoleSelectors", Ty::Msgs(LABEL_SELECTOR))]),
    ),
];

const ROLE_BINDING: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "subjects",
        Ty::Msgs(&[
            f(1, "kind", Ty::Str),
            f(2, "apiGroup", Ty::Str),
            f(3, "name", Ty::Str),
            f(4, "namespace", Ty::Str),
        ]),
    ),
    f(
        3,
        "roleRef",
        Ty::Msg(&[
            f(1, "apiGroup", Ty::Str),
            f(2, "kind", Ty::Str),
            f(3, "name", Ty::Str),
        ]),
    ),
];

const CONTAINER_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "hostPort", Ty::Int),
    f(3, "containerPort", Ty::Int),
    f(4, "protocol", Ty::Str),
    f(5, "hostIP", Ty::Str),
];

const ENV_VAR: &[Field] = &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)];

/// The container fields `kubectl create deployment|job|cronjob` fill in.
const CONTAINER: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "image", Ty::Str),
    f(3, "command", Ty::Strs),
    f(4, "args", Ty::Strs),
    f(5, "workingDir", Ty::Str),
    f(6, "ports", Ty::Msgs(CONTAINER_PORT)),
    f(7, "env", Ty::Msgs(ENV_VAR)),
    f(8, "resources", Ty::Msg(&[])),
    f(13, "terminationMessagePath", Ty::Str),
    f(14, "imagePullPolicy", Ty::Str),
    f(16, "stdin", Ty::Bool),
    f(17, "stdinOnce", Ty::Bool),
    f(18, "tty", Ty::Bool),
    f(20, "terminationMessagePolicy", Ty::Str),
];

const POD_SPEC: &[Field] = &[
    f(2, "containers", Ty::Msgs(CONTAINER)),
    f(3, "restartPolicy", Ty::Str),
    f(6, "dnsPolicy", Ty::Str),
    f(8, "serviceAccountName", Ty::Str),
    f(9, "serviceAccount", Ty::Str),
    f(10, "nodeName", Ty::Str),
    f(11, "hostNetwork", Ty::Bool),
    f(12, "hostPID", Ty::Bool),
    f(13, "hostIPC", Ty::Bool),
    f(16, "hostname", Ty::Str),
    f(17, "subdomain", Ty::Str),
    f(19, "schedulerName", Ty::Str),
    f(24, "priorityClassName", Ty::Str),
];

const POD_TEMPLATE_SPEC: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(POD_SPEC)),
];

const DEPLOYMENT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "replicas", Ty::OptInt),
            f(2, "selector", Ty::Msg(LABEL_SELECTOR)),
            f(3, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
            f(4, "strategy", Ty::Msg(&[f(1, "type", Ty::Str)])),
            f(5, "minReadySeconds", Ty::Int),
            f(6, "revisionHistoryLimit", Ty::OptInt),
            f(7, "paused", Ty::Bool),
            f(9, "progressDeadlineSeconds", Ty::OptInt),
        ]),
    ),
    f(3, "status", Ty::Ignore),
];

const SERVICE_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrString),
    f(5, "nodePort", Ty::Int),
];

const SERVICE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "ports", Ty::Msgs(SERVICE_PORT)),
            f(2, "selector", Ty::StrMap),
            f(3, "clusterIP", Ty::Str),
            f(4, "type", Ty::Str),
            f(5, "externalIPs", Ty::Strs),
            f(7, "sessionAffinity", Ty::Str),
            f(8, "loadBalancerIP", Ty::Str),
            f(10, "externalName", Ty::Str),
            f(11, "externalTrafficPolicy", Ty::Str),
            f(12, "healthCheckNodePort", Ty::Int),
            f(13, "publishNotReadyAddresses", Ty::Bool),
        ]),
    ),
    f(3, "status", Ty::Ignore),
];

/// Kinds whose protobuf bodies are understood: (apiVersion, kind, message).
const KINDS: &[(&str, &str, &[Field])] = &[
    ("v1", "Namespace", NAMESPACE),
    ("v1", "ConfigMap", CONFIG_MAP),
    ("v1", "Secret", SECRET),
    ("v1", "ServiceAccount", SERVICE_ACCOUNT),
    ("v1", "Service", SERVICE),
    ("apps/v1", "Deployment", DEPLOYMENT),
    ("authentication.k8s.io/v1", "TokenRequest", TOKEN_REQUEST),
    ("rbac.authorization.k8s.io/v1", "Role", ROLE),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", CLUSTER_ROLE),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", ROLE_BINDING),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        ROLE_BINDING,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        SELF_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        SELF_SUBJECT_RULES_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        SUBJECT_ACCESS_REVIEW,
    ),
];

/// A proto wire value.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The next (field number, value); `None` at the end, `Some(Err)` on malformed input.
    fn next(&mut self) -> Option<Result<(u64, Wire<'a>), ()>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let Some(key) = self.varint() else {
            return Some(Err(()));
        };
        let value = match key & 7 {
            0 => self.varint().map(Wire::Varint),
            2 => self.varint().and_then(|len| {
                let end = self.pos.checked_add(usize::try_from(len).ok()?)?;
                let bytes = self.buf.get(self.pos..end)?;
                self.pos = end;
                Some(Wire::Bytes(bytes))
            }),
            1 => {
                self.pos += 8;
                (self.pos <= self.buf.len()).then_some(Wire::Varint(0))
            }
            5 => {
                self.pos += 4;
                (self.pos <= self.buf.len()).then_some(Wire::Varint(0))
            }
            _ => None,
        };
        Some(value.map(|v| (key >> 3, v)).ok_or(()))
    }
}

fn malformed() -> ApiError {
    ApiError::bad_request("the protobuf body is malformed")
}

fn text(bytes: &[u8]) -> ApiResult<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed())
}

/// A map entry message `{key=1, value=2}`.
fn map_entry(bytes: &[u8], as_base64: bool) -> ApiResult<(String, Value)> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    while let Some(item) = r.next() {
        match item.map_err(|()| malformed())? {
            (1, Wire::Bytes(b)) => key = text(b)?,
            (2, Wire::Bytes(b)) if as_base64 => {
                value = Value::String(base64::engine::general_purpose::STANDARD.encode(b));
            }
            (2, Wire::Bytes(b)) => value = Value::String(text(b)?),
            _ => return Err(malformed()),
        }
    }
    Ok((key, value))
}

/// proto2 `int32`/`int64` are two's-complement varints.
fn signed(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

fn int_or_string(bytes: &[u8]) -> ApiResult<Value> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let (mut is_string, mut int, mut string) = (false, 0i64, String::new());
    while let Some(item) = r.next() {
        match item.map_err(|()| malformed())? {
            (1, Wire::Varint(t)) => is_string = t == 1,
            (2, Wire::Varint(v)) => int = signed(v),
            (3, Wire::Bytes(b)) => string = text(b)?,
            _ => return Err(malformed()),
        }
    }
    Ok(if is_string {
        Value::String(string)
    } else {
        Value::from(int)
    })
}

fn message(bytes: &[u8], fields: &[Field], kind: &str) -> ApiResult<Value> {
    let mut out = Map::new();
    let mut r = Reader { buf: bytes, pos: 0 };
    while let Some(item) = r.next() {
        let (num, wire) = item.map_err(|()| malformed())?;
        let Some(field) = fields.iter().find(|fl| fl.num == num) else {
            return Err(ApiError::unsupported_media_type(
                MEDIA_TYPE,
                &["application/json", "application/yaml"],
            )
            .with_cause(
                "FieldValueNotSupported",
                &format!("protobuf field {num} of {kind} is not supported"),
                "",
            ));
        };
        let name = field.name.to_string();
        match (field.ty, wire) {
            (Ty::Ignore, _) => {}
            (Ty::Str, Wire::Bytes(b)) => {
                if !b.is_empty() {
                    out.insert(name, Value::String(text(b)?));
                }
            }
            (Ty::Strs, Wire::Bytes(b)) => {
                let list = out.entry(name).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = list {
                    a.push(Value::String(text(b)?));
                }
            }
            (Ty::Int, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(name, Value::from(signed(v)));
                }
            }
            (Ty::OptInt, Wire::Varint(v)) => {
                out.insert(name, Value::from(signed(v)));
            }
            (Ty::Bool, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(name, Value::Bool(true));
                }
            }
            (Ty::IntOrString, Wire::Bytes(b)) => {
                out.insert(name, int_or_string(b)?);
            }
            (Ty::OptBool, Wire::Varint(v)) => {
                out.insert(name, Value::Bool(v != 0));
            }
            (Ty::StrMap | Ty::BytesMap, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, matches!(field.ty, Ty::BytesMap))?;
                let map = out.entry(name).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = map {
                    m.insert(k, v);
                }
            }
            (Ty::Msg(sub), Wire::Bytes(b)) => {
                let v = message(b, sub, kind)?;
                if v.as_object().is_some_and(|m| !m.is_empty()) {
                    out.insert(name, v);
                }
            }
            (Ty::Msgs(sub), Wire::Bytes(b)) => {
                let v = message(b, sub, kind)?;
                let list = out.entry(name).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = list {
                    a.push(v);
                }
            }
            _ => return Err(malformed()),
        }
    }
    Ok(Value::Object(out))
}

/// Decode a protobuf request body into the object's JSON form. 415 for kinds (or fields) this
/// server does not describe.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let unsupported = |what: &str| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({MEDIA_TYPE} for {what}) - protobuf is understood \
                 for the kinds `kubectl create` sends (v1 Namespace, ConfigMap, Secret, ServiceAccount, Service, \
                 apps/v1 Deployment, authentication.k8s.io/v1 TokenRequest, the rbac.authorization.k8s.io/v1 \
                 kinds and the authorization.k8s.io/v1 reviews); send JSON instead, for example \
                 `kubectl create ... --dry-run=client -o yaml | kubectl apply -f -`"
            ),
        )
    };
    let rest = body.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let mut r = Reader { buf: rest, pos: 0 };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    while let Some(item) = r.next() {
        match item.map_err(|()| malformed())? {
            (1, Wire::Bytes(type_meta)) => {
                let mut t = Reader {
                    buf: type_meta,
                    pos: 0,
                };
                while let Some(item) = t.next() {
                    match item.map_err(|()| malformed())? {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = Some(b),
            (3 | 4, Wire::Bytes(b)) if !b.is_empty() => {
                return Err(unsupported("encoded or typed raw payloads"));
            }
            _ => {}
        }
    }
    let Some((_, _, fields)) = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
    else {
        return Err(unsupported(&format!("{api_version} {kind}")));
    };
    let mut obj = message(raw.unwrap_or_default(), fields, &kind)?;
    obj["apiVersion"] = Value::String(api_version);
    obj["kind"] = Value::String(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Encode (field, bytes) pairs as length-delimited fields.
    fn msg(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (num, bytes) in fields {
            out.push((num << 3) | 2);
            out.push(u8::try_from(bytes.len()).unwrap());
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn decodes_what_kubectl_create_configmap_sends() {
        let meta = msg(&[(1, b"cm1"), (2, b""), (3, b"d"), (8, b"")]);
        let entry = msg(&[(1, b"a"), (2, b"b")]);
        let raw = msg(&[(1, &meta), (2, &entry)]);
        let type_meta = msg(&[(1, b"v1"), (2, b"ConfigMap")]);
        let mut body = b"k8s\x00".to_vec();
        body.extend(msg(&[(1, &type_meta), (2, &raw), (3, b""), (4, b"")]));
        let obj = decode(&body).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1", "namespace": "d"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn refuses_unknown_kinds_and_fields() {
        let type_meta = msg(&[(1, b"batch/v1"), (2, b"Job")]);
        let mut body = b"k8s\x00".to_vec();
        body.extend(msg(&[(1, &type_meta), (2, b"")]));
        assert_eq!(decode(&body).unwrap_err().code, 415);
        let raw = msg(&[(9, b"x")]);
        let type_meta = msg(&[(1, b"v1"), (2, b"ConfigMap")]);
        let mut body = b"k8s\x00".to_vec();
        body.extend(msg(&[(1, &type_meta), (2, &raw)]));
        assert_eq!(decode(&body).unwrap_err().code, 415);
        assert_eq!(decode(b"nope").unwrap_err().code, 400);
    }
}
