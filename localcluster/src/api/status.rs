//! API errors rendered as `kind: Status` bodies (reference/apiserver.md §3.7).

use serde_json::{Value, json};

/// One field-level cause of an error.
#[derive(Debug, Clone)]
pub struct Cause {
    pub kind: String,
    pub message: String,
    pub field: String,
}

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub name: Option<String>,
    /// (group, kind) of the object the error is about.
    pub target: Option<Box<(String, String)>>,
    pub causes: Vec<Cause>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            name: None,
            target: None,
            causes: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn not_found(group_resource: &str, name: &str) -> ApiError {
        let mut e = ApiError::new(
            404,
            "NotFound",
            format!("{group_resource} \"{name}\" not found"),
        );
        e.name = Some(name.to_string());
        e
    }

    pub fn path_not_found() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(group_resource: &str, name: &str) -> ApiError {
        let mut e = ApiError::new(
            409,
            "AlreadyExists",
            format!("{group_resource} \"{name}\" already exists"),
        );
        e.name = Some(name.to_string());
        e
    }

    pub fn conflict(group_resource: &str, name: &str, why: &str) -> ApiError {
        let mut e = ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {group_resource} \"{name}\": {why}"),
        );
        e.name = Some(name.to_string());
        e
    }

    pub fn stale(group_resource: &str, name: &str) -> ApiError {
        ApiError::conflict(
            group_resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per field error. `kind_group` is `Kind.group` (or `Kind` for core).
    pub fn invalid(kind_group: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let message = if summary.len() == 1 {
            format!("{kind_group} \"{name}\" is invalid: {}", summary[0])
        } else {
            format!(
                "{kind_group} \"{name}\" is invalid: [{}]",
                summary.join(", ")
            )
        };
        let mut e = ApiError::new(422, "Invalid", message);
        e.name = Some(name.to_string());
        let kind = kind_group
            .split('.')
            .next()
            .unwrap_or(kind_group)
            .to_string();
        let group = kind_group
            .split_once('.')
            .map(|(_, g)| g.to_string())
            .unwrap_or_default();
        e.target = Some(Box::new((group, kind)));
        e.causes = causes;
        e
    }

    pub fn forbidden(group_resource: &str, name: &str, why: &str) -> ApiError {
        let mut e = ApiError::new(
            403,
            "Forbidden",
            format!("{group_resource} \"{name}\" is forbidden: {why}"),
        );
        e.name = Some(name.to_string());
        e
    }

    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn method_not_allowed(verb: &str, group_resource: &str) -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{verb} is not supported on resources of kind \"{group_resource}\""),
        )
    }

    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    pub fn with_cause(mut self, kind: &str, message: &str, field: &str) -> ApiError {
        self.causes.push(Cause {
            kind: kind.into(),
            message: message.into(),
            field: field.into(),
        });
        self
    }

    pub fn with_target(mut self, group: &str, kind: &str) -> ApiError {
        self.target = Some(Box::new((group.to_string(), kind.to_string())));
        self
    }

    pub fn to_status(&self) -> Value {
        let mut details = serde_json::Map::new();
        if let Some(n) = &self.name {
            details.insert("name".into(), json!(n));
        }
        if let Some(t) = &self.target {
            if !t.0.is_empty() {
                details.insert("group".into(), json!(t.0));
            }
            details.insert("kind".into(), json!(t.1));
        }
        if !self.causes.is_empty() {
            details.insert(
                "causes".into(),
                Value::Array(
                    self.causes
                        .iter()
                        .map(|c| json!({"reason": c.kind, "message": c.message, "field": c.field}))
                        .collect(),
                ),
            );
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
