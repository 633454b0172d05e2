//! String `format`s checked during validation, as kube-openapi's `strfmt.Default` registry checks
//! them for custom resources.
//!
//! Upstream strips formats it does not know before validating, and numeric formats (`int32`,
//! `int64`, `float`, `double`) never constrain a value, so only string formats are checked here.
//! Formats upstream knows but this crate does not check (`uri`, `email`, `isbn*`, `creditcard`,
//! `ssn`, `hexcolor`, `rgbcolor`, `bsonobjectid`, `password`) are accepted as any string.

use std::net::{Ipv4Addr, Ipv6Addr};

/// `Some(valid)` for a format this crate checks, `None` for one it does not.
pub fn check(format: &str, s: &str) -> Option<bool> {
    Some(match format {
        "byte" => is_base64(s),
        "date-time" | "datetime" => is_date_time(s),
        "date" => is_date(s),
        "uuid" => is_uuid(s, None),
        "uuid3" => is_uuid(s, Some('3')),
        "uuid4" => is_uuid(s, Some('4')),
        "uuid5" => is_uuid(s, Some('5')),
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        "hostname" => is_hostname(s),
        "duration" => is_duration(s),
        _ => return None,
    })
}

/// Go's `base64.StdEncoding.DecodeString` acceptance: padded standard alphabet, CR/LF ignored.
fn is_base64(s: &str) -> bool {
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'\r' && *b != b'\n').collect();
    if !bytes.len().is_multiple_of(4) {
        return false;
    }
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    if padding > 2 {
        return false;
    }
    bytes[..bytes.len() - padding]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn is_date(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(y), Some(m), Some(d)) = (digits(y, 4), digits(m, 2), digits(d, 2)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// RFC 3339 date-times (`2024-01-02T03:04:05Z`, fractions, `+01:00` offsets), plus the
/// zone-less local form strfmt also accepts.
fn is_date_time(s: &str) -> bool {
    let Some(t_pos) = s.find(['T', 't', ' ']) else {
        return false;
    };
    let (date, rest) = (&s[..t_pos], &s[t_pos + 1..]);
    if !is_date(date) || rest.len() < 8 {
        return false;
    }
    let Some((clock, mut zone)) = rest.split_at_checked(8) else {
        return false;
    };
    let mut hms = clock.split(':');
    let (Some(h), Some(m), Some(sec), None) = (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return false;
    };
    let (Some(h), Some(m), Some(sec)) = (digits(h, 2), digits(m, 2), digits(sec, 2)) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 60 {
        return false;
    }
    if let Some(frac) = zone.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        zone = &frac[n..];
    }
    match zone {
        "" | "Z" | "z" => true,
        z => {
            let Some(off) = z.strip_prefix(['+', '-']) else {
                return false;
            };
            let mut hm = off.split(':');
            match (hm.next(), hm.next(), hm.next()) {
                (Some(oh), Some(om), None) => {
                    digits(oh, 2).is_some_and(|v| v <= 23) && digits(om, 2).is_some_and(|v| v <= 59)
                }
                _ => false,
            }
        }
    }
}

fn is_uuid(s: &str, version: Option<char>) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let shape = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    shape && version.is_none_or(|v| groups[2].starts_with(v))
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    (ip.parse::<Ipv4Addr>().is_ok() && bits <= 32)
        || (ip.parse::<Ipv6Addr>().is_ok() && bits <= 128)
}

fn is_mac(s: &str) -> bool {
    let sep = if s.contains(':') { ':' } else { '-' };
    let groups: Vec<&str> = s.split(sep).collect();
    [6, 8, 20].contains(&groups.len())
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// RFC 1123 host names, as strfmt's hostname pattern: dot-separated labels of letters, digits
/// and inner hyphens, each at most 63 characters, 255 in all.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// strfmt durations: one or more `<number><unit>` groups (`ns us µs ms s m h d w`), spaces allowed.
fn is_duration(s: &str) -> bool {
    let mut rest = s.trim();
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if n == 0 {
            return false;
        }
        rest = rest[n..].trim_start();
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h", "d", "w"]
            .iter()
            .find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = rest[u.len()..].trim_start(),
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_is_padded_standard_base64() {
        assert_eq!(check("byte", "aGVsbG8="), Some(true));
        assert_eq!(check("byte", "aGVs\nbG8="), Some(true));
        assert_eq!(check("byte", ""), Some(true));
        assert_eq!(check("byte", "aGVsbG8"), Some(false));
        assert_eq!(check("byte", "a-_b"), Some(false));
        assert_eq!(check("byte", "a==="), Some(false));
    }

    #[test]
    fn date_time_and_date() {
        for ok in [
            "2024-02-29T23:59:60Z",
            "2024-01-02T03:04:05.123+01:00",
            "2024-01-02t03:04:05z",
            "2024-01-02T03:04:05",
        ] {
            assert_eq!(check("date-time", ok), Some(true), "{ok}");
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-01-02",
            "2024-01-02T24:00:00Z",
            "yesterday",
            "2024-01-02T03:04:05+1",
        ] {
            assert_eq!(check("date-time", bad), Some(false), "{bad}");
        }
        assert_eq!(check("date", "2024-12-31"), Some(true));
        assert_eq!(check("date", "2024-13-01"), Some(false));
    }

    #[test]
    fn other_string_formats() {
        assert_eq!(
            check("uuid", "123e4567-e89b-12d3-a456-426614174000"),
            Some(true)
        );
        assert_eq!(
            check("uuid4", "123e4567-e89b-12d3-a456-426614174000"),
            Some(false)
        );
        assert_eq!(check("ipv4", "10.0.0.1"), Some(true));
        assert_eq!(check("ipv4", "10.0.0.256"), Some(false));
        assert_eq!(check("ipv6", "::1"), Some(true));
        assert_eq!(check("cidr", "10.0.0.0/8"), Some(true));
        assert_eq!(check("cidr", "10.0.0.0/33"), Some(false));
        assert_eq!(check("mac", "00:1a:2b:3c:4d:5e"), Some(true));
        assert_eq!(check("hostname", "a-b.example.com"), Some(true));
        assert_eq!(check("hostname", "-a.example.com"), Some(false));
        assert_eq!(check("duration", "1h30m"), Some(true));
        assert_eq!(check("duration", "soon"), Some(false));
    }

    #[test]
    fn numeric_and_unknown_formats_are_not_checked() {
        for f in [
            "int32", "int64", "float", "double", "email", "uri", "password", "made-up",
        ] {
            assert_eq!(check(f, "anything"), None, "{f}");
        }
    }
}
