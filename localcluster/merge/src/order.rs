//! Ordering of merged lists: structured-merge-diff's `visitListItems` walk.
//!
//! Items present on both sides follow the right-hand (applied or patch) order; items only on the
//! left keep their place relative to their neighbours; right-only items are inserted where they
//! appear on the right. Both server-side apply and strategic merge patch use this.

use std::collections::{HashMap, HashSet};

use crate::fieldset::PathElement;

/// One slot of the merged list: the left item, the right item, or both (merged).
pub(crate) type Slot = (Option<usize>, Option<usize>);

/// Interleaves `left` and `right` (item identities) into merged order.
pub(crate) fn interleave(left: &[PathElement], right: &[PathElement]) -> Vec<Slot> {
    let mut first_left: HashMap<&PathElement, usize> = HashMap::new();
    for (i, pe) in left.iter().enumerate() {
        first_left.entry(pe).or_insert(i);
    }
    let in_right: HashSet<&PathElement> = right.iter().collect();
    let mut shared = right.iter().filter(|pe| first_left.contains_key(pe));
    let mut next_shared = shared.next();
    let mut merged_right: HashSet<&PathElement> = HashSet::new();
    let mut out = Vec::with_capacity(left.len().max(right.len()));
    let (mut li, mut ri) = (0, 0);
    while li < left.len() || ri < right.len() {
        if li < left.len() && ri < right.len() {
            let pe = &left[li];
            if *pe == right[ri] && !merged_right.contains(pe) {
                out.push((Some(li), Some(ri)));
                merged_right.insert(pe);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if in_right.contains(pe)
                && !merged_right.contains(pe)
                && next_shared.is_some_and(|n| n != pe)
            {
                // A shared item whose turn has not come: it is emitted with its right twin.
                li += 1;
                continue;
            }
        }
        if li < left.len() {
            let pe = &left[li];
            let duplicate = first_left.get(pe) != Some(&li);
            if !in_right.contains(pe) || duplicate {
                out.push((Some(li), None));
                li += 1;
                continue;
            }
            if merged_right.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < right.len() {
            let pe = &right[ri];
            let left_twin = if merged_right.insert(pe) {
                first_left.get(pe).copied()
            } else {
                None
            };
            out.push((left_twin, Some(ri)));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &str) -> Vec<PathElement> {
        names
            .chars()
            .map(|c| PathElement::Field(c.to_string()))
            .collect()
    }

    fn render(left: &str, right: &str) -> String {
        let (l, r) = (ids(left), ids(right));
        interleave(&l, &r)
            .into_iter()
            .map(|slot| match slot {
                (Some(i), _) => left.chars().nth(i).unwrap_or('?').to_ascii_uppercase(),
                (None, Some(i)) => right.chars().nth(i).unwrap_or('?'),
                (None, None) => '?',
            })
            .collect()
    }

    #[test]
    fn merges_like_structured_merge_diff() {
        // Upper case: came from the left (possibly merged with the right); lower: right only.
        assert_eq!(render("abc", "abc"), "ABC");
        assert_eq!(render("abc", "d"), "ABCd");
        assert_eq!(render("abc", "b"), "ABC");
        assert_eq!(render("abc", "cb"), "ACB");
        assert_eq!(render("axb", "bya"), "XByA");
        assert_eq!(render("", "ab"), "ab");
        assert_eq!(render("aa", "a"), "AA");
    }
}
