//! Kubernetes name rules (DNS-1123 label/subdomain, DNS-1035 label) with apimachinery's messages.

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_label(s: &str, first_alpha: bool) -> bool {
    let b = s.as_bytes();
    let inner_ok = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    let first_ok = b.first().is_some_and(|c| {
        if first_alpha {
            c.is_ascii_lowercase()
        } else {
            c.is_ascii_alphanumeric()
        }
    });
    let last_ok = b
        .last()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    inner_ok && first_ok && last_ok
}

/// The problems of `s` as a DNS-1123 label (empty when valid).
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !is_label(s, false) {
        errs.push(format!(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and \
             end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL_FMT}')"
        ));
    }
    errs
}

/// The problems of `s` as a DNS-1123 subdomain (empty when valid).
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !s.split('.').all(|part| is_label(part, false)) {
        errs.push(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must \
             start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
             '{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*')"
        ));
    }
    errs
}

/// The problems of `s` as a DNS-1035 label (empty when valid).
pub fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !is_label(s, true) {
        errs.push(format!(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic \
             character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for \
             validation is '{DNS1035_LABEL_FMT}')"
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(dns1123_label("a-1").is_empty());
        assert!(dns1123_label("1a").is_empty());
        assert_eq!(dns1123_label("-a").len(), 1);
        assert_eq!(
            dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_owned()]
        );
        assert!(dns1123_subdomain("fission.io").is_empty());
        assert_eq!(dns1123_subdomain("Fission.io").len(), 1);
        assert_eq!(dns1123_subdomain("a..b").len(), 1);
        assert!(dns1035_label("v1beta1").is_empty());
        assert_eq!(dns1035_label("1v").len(), 1);
        assert!(dns1035_label("v1").is_empty());
        assert!(dns1035_label("").len() == 1);
    }
}
