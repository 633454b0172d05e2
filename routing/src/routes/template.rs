//! gorilla/mux v1.8 path templates: `/users/{id}`, `/files/{path:.*}`.
//!
//! As in mux's `newRouteRegexp`: literal text is quoted, `{name}` matches `[^/]+`, `{name:re}`
//! matches `re`, the whole is anchored at the start, and at the end too unless the template is a
//! `PathPrefix`. A template without variables is compared as a plain string (mux does the same).

use std::fmt::Write as _;

use http::HeaderName;
use regex::Regex;

use crate::headers::PARAMS_HEADER_PREFIX;

/// Whether a template must match the whole path (`Handle`) or a prefix of it (`PathPrefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchKind {
    Exact,
    Prefix,
}

/// A route variable and the header it is forwarded in.
#[derive(Debug, Clone)]
pub(crate) struct Var {
    pub(crate) name: String,
    /// `x-fission-params-<name>`; `None` when the name cannot be a header name (Go would fail the
    /// request; Rivulet forwards it without that header).
    pub(crate) header: Option<HeaderName>,
}

/// A compiled path template.
#[derive(Debug, Clone)]
pub(crate) struct PathTemplate {
    kind: MatchKind,
    /// The template text when it has no variables: matching is a string comparison.
    literal: Option<String>,
    regex: Option<Regex>,
    pub(crate) vars: Vec<Var>,
}

impl PathTemplate {
    /// Compiles a template, with mux's error messages.
    pub(crate) fn parse(template: &str, kind: MatchKind) -> Result<Self, String> {
        if !template.starts_with('/') {
            return Err(format!(
                "mux: path must start with a slash, got {template:?}"
            ));
        }
        let braces = brace_indices(template)
            .ok_or_else(|| format!("mux: unbalanced braces in {template:?}"))?;
        if braces.is_empty() {
            return Ok(Self {
                kind,
                literal: Some(template.to_owned()),
                regex: None,
                vars: Vec::new(),
            });
        }
        let mut pattern = String::from("^");
        let mut vars = Vec::with_capacity(braces.len());
        let mut end = 0;
        for (i, &(open, close)) in braces.iter().enumerate() {
            pattern.push_str(&regex::escape(&template[end..open]));
            end = close;
            let tag = &template[open..close];
            let param = &tag[1..tag.len() - 1];
            let (name, patt) = match param.split_once(':') {
                Some((name, patt)) => (name, patt),
                None => (param, "[^/]+"),
            };
            if name.is_empty() || patt.is_empty() {
                return Err(format!("mux: missing name or pattern in {tag:?}"));
            }
            let _ = write!(pattern, "(?P<v{i}>{patt})");
            vars.push(Var {
                name: name.to_owned(),
                header: param_header(name),
            });
        }
        pattern.push_str(&regex::escape(&template[end..]));
        if kind == MatchKind::Exact {
            pattern.push('$');
        }
        let regex = Regex::new(&pattern)
            .map_err(|e| format!("mux: invalid regexp in {template:?}: {e}"))?;
        if regex.captures_len() != vars.len() + 1 {
            // mux panics here (and Fission's router with it); Rivulet skips the route instead.
            return Err(format!(
                "route {template} contains capture groups in its regexp. Only non-capturing groups are accepted: e.g. (?:pattern) instead of (pattern)"
            ));
        }
        Ok(Self {
            kind,
            literal: None,
            regex: Some(regex),
            vars,
        })
    }

    /// Whether the (decoded) path matches.
    pub(crate) fn is_match(&self, path: &str) -> bool {
        match (&self.literal, &self.regex, self.kind) {
            (Some(lit), _, MatchKind::Exact) => path == lit,
            (Some(lit), _, MatchKind::Prefix) => path.starts_with(lit.as_str()),
            (None, Some(re), _) => re.is_match(path),
            (None, None, _) => false,
        }
    }

    /// The variables' values in a matching path, in template order.
    pub(crate) fn values<'p>(&self, path: &'p str) -> Vec<&'p str> {
        let Some(caps) = self.regex.as_ref().and_then(|re| re.captures(path)) else {
            return Vec::new();
        };
        (1..=self.vars.len())
            .map(|i| caps.get(i).map_or("", |m| m.as_str()))
            .collect()
    }
}

/// The header a route variable is forwarded in. `HeaderName` is lower case; the proxy writes
/// header names in Title-Case, which gives Go's canonical form (`X-Fission-Params-Userid`).
fn param_header(name: &str) -> Option<HeaderName> {
    let mut full = String::with_capacity(PARAMS_HEADER_PREFIX.len() + name.len());
    full.push_str(PARAMS_HEADER_PREFIX);
    full.push_str(name);
    HeaderName::from_bytes(full.as_bytes()).ok()
}

/// First-level `{`…`}` pairs as (start, end-exclusive); `None` when unbalanced (mux's
/// `braceIndices`).
fn brace_indices(s: &str) -> Option<Vec<(usize, usize)>> {
    let mut level = 0i32;
    let mut start = 0;
    let mut out = Vec::new();
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'{' => {
                level += 1;
                if level == 1 {
                    start = i;
                }
            }
            b'}' => {
                level -= 1;
                if level == 0 {
                    out.push((start, i + 1));
                } else if level < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    (level == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(t: &str) -> PathTemplate {
        PathTemplate::parse(t, MatchKind::Exact).unwrap()
    }

    #[test]
    fn literal_templates_compare_strings() {
        let t = exact("/hello");
        assert!(t.is_match("/hello"));
        assert!(!t.is_match("/hello/"));
        assert!(!t.is_match("/hellox"));
        let p = PathTemplate::parse("/api/", MatchKind::Prefix).unwrap();
        assert!(p.is_match("/api/"));
        assert!(p.is_match("/api/x/y"));
        assert!(!p.is_match("/api"));
    }

    #[test]
    fn literal_text_is_quoted() {
        let t = exact("/a.b/{id}");
        assert!(t.is_match("/a.b/1"));
        assert!(!t.is_match("/aXb/1"), "the dot is literal");
    }

    #[test]
    fn default_variables_stop_at_slash() {
        let t = exact("/users/{id}");
        assert!(t.is_match("/users/42"));
        assert!(!t.is_match("/users/"));
        assert!(!t.is_match("/users/42/x"));
        assert_eq!(t.values("/users/42"), vec!["42"]);
        assert_eq!(t.vars[0].name, "id");
        assert_eq!(t.vars[0].header.as_ref().unwrap(), "x-fission-params-id");
    }

    #[test]
    fn custom_patterns_and_nested_braces() {
        let t = exact("/files/{path:.*}");
        assert_eq!(t.values("/files/a/b/c"), vec!["a/b/c"]);
        assert!(t.is_match("/files/"));
        let t = exact("/code/{id:[0-9]{3}}/{name}");
        assert!(t.is_match("/code/123/x"));
        assert!(!t.is_match("/code/12/x"));
        assert_eq!(t.values("/code/123/x"), vec!["123", "x"]);
    }

    #[test]
    fn prefix_templates_are_not_anchored_at_the_end() {
        let t = PathTemplate::parse("/users/{id}/", MatchKind::Prefix).unwrap();
        assert!(t.is_match("/users/7/orders"));
        assert_eq!(t.values("/users/7/orders"), vec!["7"]);
    }

    #[test]
    fn errors_follow_mux() {
        for (t, want) in [
            ("hello", "must start with a slash"),
            ("/a/{id", "unbalanced braces"),
            ("/a/id}", "unbalanced braces"),
            ("/a/{}", "missing name or pattern"),
            ("/a/{id:}", "missing name or pattern"),
            ("/a/{:x}", "missing name or pattern"),
            ("/a/{id:(x|y)}", "capture groups"),
            ("/a/{id:[}", "invalid regexp"),
        ] {
            let err = PathTemplate::parse(t, MatchKind::Exact).unwrap_err();
            assert!(err.contains(want), "{t}: {err}");
        }
        assert!(PathTemplate::parse("/a/{id:(?:x|y)}", MatchKind::Exact).is_ok());
    }

    #[test]
    fn names_that_cannot_be_headers_have_none() {
        let t = exact("/a/{bad name}");
        assert!(t.vars[0].header.is_none());
        assert!(t.is_match("/a/x"));
    }
}
