//! The set of served resources: built-ins plus the established CRDs, swapped atomically.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::Value;

use crate::resources::{self, ResourceInfo};

/// An immutable view of every served resource.
#[derive(Debug, Default)]
pub struct Catalog {
    /// In discovery order.
    pub resources: Vec<Arc<ResourceInfo>>,
    by_gvr: HashMap<(String, String, String), Arc<ResourceInfo>>,
}

impl Catalog {
    fn build(resources: Vec<ResourceInfo>) -> Catalog {
        let resources: Vec<Arc<ResourceInfo>> = resources.into_iter().map(Arc::new).collect();
        let by_gvr = resources
            .iter()
            .map(|r| {
                (
                    (r.group.clone(), r.version.clone(), r.plural.clone()),
                    r.clone(),
                )
            })
            .collect();
        Catalog { resources, by_gvr }
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Groups in discovery order, each with its versions in order (first = preferred).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.resources {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ResourceInfo>> {
        self.resources
            .iter()
            .filter(move |r| r.group == group && r.version == version)
    }

    /// One resource per storage key (the first version), for whole-store walks.
    pub fn storage_resources(&self) -> Vec<Arc<ResourceInfo>> {
        let mut seen = std::collections::HashSet::new();
        self.resources
            .iter()
            .filter(|r| seen.insert(r.storage.clone()))
            .cloned()
            .collect()
    }

    pub fn by_storage(&self, storage: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .find(|r| r.storage == storage)
            .cloned()
    }
}

/// The live registry.
#[derive(Debug)]
pub struct Registry {
    current: RwLock<Arc<Catalog>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            current: RwLock::new(Arc::new(Catalog::build(resources::builtins()))),
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Rebuild from the stored CRDs (those not being deleted serve; terminating ones keep serving
    /// until their instances are gone, as upstream).
    pub fn rebuild(&self, crds: &[Arc<crate::storage::Stored>]) {
        let mut all = resources::builtins();
        for crd in crds {
            if established(&crd.value) {
                all.extend(resources::from_crd(&crd.value));
            }
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(Catalog::build(all));
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

fn established(crd: &Value) -> bool {
    crd["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    })
}
