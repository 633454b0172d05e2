//! URL-path helpers that behave like Go's `net/url` and gorilla/mux, because Fission's router
//! matches on Go's decoded `URL.Path` and sends Go's re-escaped path upstream.

use std::borrow::Cow;

/// A `%` not followed by two hex digits: Go's server answers such a request with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidEscape;

/// Percent-decodes a request path like Go's `url.PathUnescape` (`+` stays `+`). Bytes that do not
/// form UTF-8 are replaced with U+FFFD, which is also how Go's regexp engine reads them.
pub(crate) fn unescape_path(raw: &str) -> Result<Cow<'_, str>, InvalidEscape> {
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| hex_value(*b));
            let lo = bytes.get(i + 2).and_then(|b| hex_value(*b));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(InvalidEscape),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Go's `shouldEscape(c, encodePath)`: everything but unreserved characters and `$&+,/:;=@`.
fn must_escape(c: u8) -> bool {
    !(c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'_'
                | b'.'
                | b'~'
                | b'$'
                | b'&'
                | b'+'
                | b','
                | b'/'
                | b':'
                | b';'
                | b'='
                | b'@'
        ))
}

/// Escapes a decoded path like Go's `url.URL.EscapedPath` does for a path it has to re-encode.
pub(crate) fn escape_path(path: &str) -> Cow<'_, str> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if !path.bytes().any(must_escape) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 16);
    for &b in path.as_bytes() {
        if must_escape(b) {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        } else {
            out.push(char::from(b));
        }
    }
    Cow::Owned(out)
}

/// gorilla/mux `cleanPath`: Go's `path.Clean` on a rooted path, keeping a trailing slash.
/// mux answers 301 to the cleaned path when it differs from the request path.
pub(crate) fn clean_path(p: &str) -> Cow<'_, str> {
    if is_clean(p) {
        return Cow::Borrowed(p);
    }
    let mut stack: Vec<&str> = Vec::new();
    for segment in p.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s),
        }
    }
    let mut out = String::with_capacity(p.len() + 1);
    for s in &stack {
        out.push('/');
        out.push_str(s);
    }
    // An empty result is the root; otherwise a trailing slash survives.
    if out.is_empty() || p.ends_with('/') {
        out.push('/');
    }
    Cow::Owned(out)
}

fn is_clean(p: &str) -> bool {
    let Some(rest) = p.strip_prefix('/') else {
        return false;
    };
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment == "." || segment == ".." || (segment.is_empty() && !last) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_decodes_like_go() {
        assert_eq!(unescape_path("/a%2Fb").unwrap(), "/a/b");
        assert_eq!(unescape_path("/caf%C3%A9").unwrap(), "/café");
        assert_eq!(unescape_path("/a+b").unwrap(), "/a+b");
        assert_eq!(unescape_path("/plain").unwrap(), "/plain");
        assert!(matches!(unescape_path("/plain"), Ok(Cow::Borrowed(_))));
        assert_eq!(unescape_path("/bad%zz"), Err(InvalidEscape));
        assert_eq!(unescape_path("/short%4"), Err(InvalidEscape));
        assert_eq!(unescape_path("/x%FF").unwrap(), "/x\u{FFFD}");
    }

    #[test]
    fn escape_keeps_what_go_keeps() {
        assert_eq!(escape_path("/a/b"), "/a/b");
        assert_eq!(escape_path("/a b"), "/a%20b");
        assert_eq!(escape_path("/café"), "/caf%C3%A9");
        assert_eq!(escape_path("/q?x"), "/q%3Fx");
        assert_eq!(escape_path("/$&+,:;=@-_.~"), "/$&+,:;=@-_.~");
        assert_eq!(escape_path("/(x)*!'"), "/%28x%29%2A%21%27");
    }

    #[test]
    fn clean_path_matches_mux() {
        for (input, want) in [
            ("/", "/"),
            ("/hello", "/hello"),
            ("/hello/", "/hello/"),
            ("//hello", "/hello"),
            ("/a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("/a/..", "/"),
            ("/a/b/../", "/a/"),
            ("/a/.", "/a"),
            ("*", "/*"),
            ("", "/"),
        ] {
            assert_eq!(clean_path(input), want, "{input:?}");
        }
        assert!(matches!(clean_path("/a/b/"), Cow::Borrowed(_)));
    }
}
