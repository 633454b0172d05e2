//! Names and small flag parsers shared by the commands.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::{Error, Result};

/// The object name for a name given on the command line. Kubernetes refuses `_` in object
/// names (Fission's seed `hello_world` fails on real Fission), so `_` becomes `-`; every
/// command maps names the same way, so `--name hello_world` always means `hello-world`
/// (docs/cli.md, "Names with `_`"). Other invalid names go to the API server unchanged and its
/// message names the field.
pub fn kube_name(kind: &str, given: &str) -> String {
    let name = given.replace('_', "-");
    if name != given {
        eprintln!(
            "note: Kubernetes names cannot contain '_'; {kind} '{given}' is named '{name}' in the cluster"
        );
    }
    name
}

/// A random UUID (version 4), as Fission names generated objects.
pub fn uuid4() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::usage(format!("no randomness: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().fold(String::new(), |mut s, x| {
        use std::fmt::Write as _;
        let _ = write!(s, "{x:02x}");
        s
    });
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// `<function>-<id>`, the function part shortened so the name stays within 63 characters
/// (Fission's `generatePackageName`).
pub fn package_name(function: &str, id: &str) -> String {
    let room = 63usize.saturating_sub(id.len() + 1);
    let prefix: String = function.chars().take(room).collect();
    format!("{}-{id}", prefix.trim_end_matches('-'))
}

/// `--labels "a=b,c=d"`.
pub fn parse_labels(text: Option<&str>) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for pair in text
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.trim().is_empty())
    {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("--labels: '{pair}' is not key=value")))?;
        labels.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(labels)
}

/// Repeated `--annotation key=value`.
pub fn parse_annotations(items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut annotations = BTreeMap::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("--annotation: '{item}' is not key=value")))?;
        annotations.insert(k.to_owned(), v.to_owned());
    }
    Ok(annotations)
}

/// `--mincpu/--maxcpu` (millicores) and `--minmemory/--maxmemory` (MiB), Fission's
/// `GetResourceReqs`: set values override `base`; a minimum above its maximum is refused.
#[derive(Clone, Copy, Debug, Default, clap::Args)]
pub struct ResourceFlags {
    /// Minimum CPU to be assigned to pod (In millicore, minimum 1)
    #[arg(long)]
    pub mincpu: Option<i64>,
    /// Maximum CPU to be assigned to pod (In millicore, minimum 1)
    #[arg(long)]
    pub maxcpu: Option<i64>,
    /// Minimum memory to be assigned to pod (In megabyte)
    #[arg(long)]
    pub minmemory: Option<i64>,
    /// Maximum memory to be assigned to pod (In megabyte)
    #[arg(long)]
    pub maxmemory: Option<i64>,
}

impl ResourceFlags {
    /// Whether any flag is set.
    pub fn any(&self) -> bool {
        self.mincpu.is_some()
            || self.maxcpu.is_some()
            || self.minmemory.is_some()
            || self.maxmemory.is_some()
    }

    /// `base` with the set flags applied.
    pub fn apply(&self, base: Option<ResourceRequirements>) -> Result<ResourceRequirements> {
        let mut res = base.unwrap_or_default();
        let set = |map: &mut Option<BTreeMap<String, Quantity>>, key: &str, value: String| {
            map.get_or_insert_with(BTreeMap::new)
                .insert(key.to_owned(), Quantity(value));
        };
        for (value, what) in [
            (self.mincpu, "mincpu"),
            (self.maxcpu, "maxcpu"),
            (self.minmemory, "minmemory"),
            (self.maxmemory, "maxmemory"),
        ] {
            if value.is_some_and(|v| v < 1) {
                return Err(Error::usage(format!("--{what} must be at least 1")));
            }
        }
        if let Some(v) = self.mincpu {
            set(&mut res.requests, "cpu", format!("{v}m"));
        }
        if let Some(v) = self.maxcpu {
            set(&mut res.limits, "cpu", format!("{v}m"));
        }
        if let Some(v) = self.minmemory {
            set(&mut res.requests, "memory", format!("{v}Mi"));
        }
        if let Some(v) = self.maxmemory {
            set(&mut res.limits, "memory", format!("{v}Mi"));
        }
        if let (Some(min), Some(max)) = (self.mincpu, self.maxcpu)
            && min > max
        {
            return Err(Error::usage("MinCPU must be less than or equal to MaxCPU"));
        }
        if let (Some(min), Some(max)) = (self.minmemory, self.maxmemory)
            && min > max
        {
            return Err(Error::usage(
                "MinMemory must be less than or equal to MaxMemory",
            ));
        }
        Ok(res)
    }
}

/// A quantity for list columns (`0` when unset, as Go's `Quantity.String()` of a zero value).
pub fn quantity(map: Option<&BTreeMap<String, Quantity>>, key: &str) -> String {
    map.and_then(|m| m.get(key))
        .map_or_else(|| "0".to_owned(), |q| q.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscores_become_dashes_and_other_names_pass_through() {
        assert_eq!(kube_name("function", "hello_world"), "hello-world");
        assert_eq!(kube_name("function", "Hello.World"), "Hello.World");
    }

    #[test]
    fn package_names_stay_within_63_characters() {
        let id = uuid4().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(
            package_name("hello-world", &id),
            format!("hello-world-{id}")
        );
        let long = "f".repeat(60);
        let name = package_name(&long, &id);
        assert_eq!(name.len(), 63);
        assert!(name.ends_with(&id));
    }

    #[test]
    fn resources_are_millicores_and_mebibytes() {
        let flags = ResourceFlags {
            mincpu: Some(100),
            maxcpu: Some(200),
            minmemory: Some(64),
            maxmemory: None,
        };
        let res = flags.apply(None).unwrap();
        assert_eq!(quantity(res.requests.as_ref(), "cpu"), "100m");
        assert_eq!(quantity(res.limits.as_ref(), "cpu"), "200m");
        assert_eq!(quantity(res.requests.as_ref(), "memory"), "64Mi");
        let bad = ResourceFlags {
            mincpu: Some(300),
            maxcpu: Some(200),
            ..ResourceFlags::default()
        };
        assert!(bad.apply(None).is_err());
    }

    #[test]
    fn labels_and_annotations_parse_key_value_pairs() {
        let labels = parse_labels(Some("a=b, c=d")).unwrap();
        assert_eq!(labels.get("c").map(String::as_str), Some("d"));
        assert!(parse_labels(Some("nokey")).is_err());
        let ann = parse_annotations(&["x.io/team=dev".into()]).unwrap();
        assert_eq!(ann.get("x.io/team").map(String::as_str), Some("dev"));
    }
}
