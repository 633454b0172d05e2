//! ServiceAccount tokens (`serviceaccounts/<name>/token`, the TokenRequest API a kubelet calls):
//! what a pod gets instead of the admin token.
//!
//! A token is `rivulet-sa.<claims>.<mac>`: the claims (namespace, ServiceAccount, the pod it is
//! bound to, expiry) as base64url JSON, signed with HMAC-SHA256 under a key derived from the
//! admin token, so nothing new has to be stored and rotating the admin token revokes every pod
//! token with it. Issuing and checking are pure; the API server adds the two facts only it
//! knows: the time, and whether the ServiceAccount and the bound pod still exist (a token dies
//! with its account, a pod-bound one also with its pod, as in Kubernetes).
//!
//! What such a token may do is RBAC's to say (crate::rbac): the token names the user
//! `system:serviceaccount:<ns>:<name>`, in the groups `system:serviceaccounts`,
//! `system:serviceaccounts:<ns>` and `system:authenticated`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "rivulet-sa.";

/// Tokens shorter than this are refused (Kubernetes' floor for `spec.expirationSeconds`).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;

/// What a kubelet asks for (`3600 + 7`, Kubernetes' marker for "kubelet-managed"): such a
/// pod-bound token is valid for [`EXTENDED_SECONDS`], the way kube-apiserver's
/// `--service-account-extend-token-expiration` (on by default) keeps old clients working; the
/// pod's deletion still ends it.
pub const KUBELET_EXPIRATION_SECONDS: i64 = 3607;

/// One year.
pub const EXTENDED_SECONDS: i64 = 365 * 24 * 3600;

/// Who a token speaks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "ns")]
    pub namespace: String,
    #[serde(rename = "sa")]
    pub service_account: String,
    /// The ServiceAccount's uid when the token was issued: a token dies with its account, also
    /// when one of the same name replaces it (kube-apiserver checks the uid the same way).
    #[serde(rename = "sau", default, skip_serializing_if = "Option::is_none")]
    pub service_account_uid: Option<String>,
    /// The pod the token is bound to: name and uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<(String, String)>,
    /// Unix seconds after which the token is refused.
    #[serde(rename = "exp")]
    pub expires: i64,
}

impl Claims {
    /// Kubernetes' user name for the ServiceAccount.
    pub fn user(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }
}

/// Signs and checks tokens.
#[derive(Clone)]
pub struct Signer(Vec<u8>);

impl Signer {
    /// The signer of the cluster whose admin token is `admin_token`.
    pub fn new(admin_token: &str) -> Self {
        Self(mac(admin_token.as_bytes(), b"serviceaccount-token-key/v1"))
    }

    /// A token carrying `claims`.
    pub fn issue(&self, claims: &Claims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let sig = URL_SAFE_NO_PAD.encode(mac(&self.0, body.as_bytes()));
        format!("{PREFIX}{body}.{sig}")
    }

    /// The claims of `token` when this signer made it and it has not expired at `now` (unix
    /// seconds). Whether its pod still exists is the caller's question.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let (body, sig) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        // Constant time: the signature is what an attacker would guess byte by byte.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            sig.as_slice(),
            mac(&self.0, body.as_bytes()).as_slice(),
        )) {
            return None;
        }
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (now <= claims.expires).then_some(claims)
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The expiry (unix seconds) of a token requested at `now` for `seconds`, and the one reported
/// back (`status.expirationTimestamp`): they differ only for a kubelet's pod-bound request
/// (see [`KUBELET_EXPIRATION_SECONDS`]).
pub fn expiry(now: i64, seconds: i64, pod_bound: bool) -> (i64, i64) {
    let reported = now + seconds;
    if pod_bound && seconds == KUBELET_EXPIRATION_SECONDS {
        (now + EXTENDED_SECONDS, reported)
    } else {
        (reported, reported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires: i64) -> Claims {
        Claims {
            namespace: "default".into(),
            service_account: "default".into(),
            service_account_uid: Some("sa-uid".into()),
            pod: Some(("p".into(), "uid-1".into())),
            expires,
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_only_under_its_key() {
        let signer = Signer::new("admin-token");
        let token = signer.issue(&claims(100));
        assert_eq!(signer.verify(&token, 100), Some(claims(100)));
        assert_eq!(signer.verify(&token, 101), None, "expired");
        assert_eq!(Signer::new("other").verify(&token, 0), None, "other key");
        assert_eq!(signer.verify("admin-token", 0), None);
    }

    #[test]
    fn altered_claims_are_refused() {
        let signer = Signer::new("admin-token");
        let token = signer.issue(&claims(100));
        let (_, sig) = token.rsplit_once('.').unwrap();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(i64::MAX)).unwrap());
        assert_eq!(
            signer.verify(&format!("{PREFIX}{forged_body}.{sig}"), 0),
            None
        );
        assert_eq!(signer.verify(&format!("{token}x"), 0), None);
    }

    #[test]
    fn kubelet_requests_are_extended_only_when_bound_to_a_pod() {
        assert_eq!(expiry(0, 3607, true), (EXTENDED_SECONDS, 3607));
        assert_eq!(expiry(0, 3607, false), (3607, 3607));
        assert_eq!(expiry(10, 600, true), (610, 610));
    }
}
