//! What every merge schema answers and in which words: schema paths ([`Seg`]), how a list or a
//! map merges ([`ListType`], [`MapType`]), and the [`MergeSchema`] trait itself.

use serde_json::Value;

/// One step of a *schema* path: a field name, or "an item of this list".
///
/// Values of free-form maps (`labels`, `data`) appear as `Field(<key>)`, exactly like struct
/// fields; implementations tell them apart with their own knowledge (OpenAPI
/// `additionalProperties`) or simply never have rules below them (the built-in table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A named field (or a key of a free-form map).
    Field(&'a str),
    /// An item of a list.
    Item,
}

/// A key field of a keyed list (`x-kubernetes-list-map-keys`), with its default if the schema
/// has one (e.g. a container port's `protocol` defaults to `TCP`).
#[derive(Clone, Debug, PartialEq)]
pub struct ListMapKey {
    /// The key field's name.
    pub name: String,
    /// Value to assume when an item omits the field.
    pub default: Option<Value>,
}

/// How a list merges (`x-kubernetes-list-type`; for built-ins `patchStrategy`/`patchMergeKey`).
#[derive(Clone, Debug, PartialEq)]
pub enum ListType {
    /// Replaced as a whole; owned as one leaf.
    Atomic,
    /// A set of scalars merged by value (e.g. `metadata.finalizers`).
    Set,
    /// A list of objects merged by these key fields (e.g. containers by `name`). Strategic merge
    /// patch uses only the first key, like upstream's single `patchMergeKey`.
    Map(Vec<ListMapKey>),
}

/// How a map or struct merges (`x-kubernetes-map-type` / `structType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    /// Each field merges and is owned separately.
    Granular,
    /// Replaced as a whole; owned as one leaf (e.g. a `LabelSelector`).
    Atomic,
}

/// Answers, for a path from the object root, how the list or map found there merges.
///
/// Callers only ask `list_type` for paths holding arrays and `map_type` for paths holding objects.
pub trait MergeSchema {
    /// The merge type of the list at `path`.
    fn list_type(&self, path: &[Seg<'_>]) -> ListType;
    /// The merge type of the map at `path`.
    fn map_type(&self, path: &[Seg<'_>]) -> MapType;
}

impl<T: MergeSchema + ?Sized> MergeSchema for &T {
    fn list_type(&self, path: &[Seg<'_>]) -> ListType {
        (**self).list_type(path)
    }
    fn map_type(&self, path: &[Seg<'_>]) -> MapType {
        (**self).map_type(path)
    }
}
