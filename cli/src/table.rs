//! Column output as Go's `tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)` prints it, which
//! Fission's list commands use: every column but the last padded to its widest cell plus one.

use std::io::Write;

use crate::error::{Error, Result};

/// Prints `header` and `rows` aligned.
pub fn print(header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(render(header, rows).as_bytes())
        .map_err(Error::Output)
}

/// The aligned text of [`print`].
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let all: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| (*h).to_owned()).collect())
        .chain(rows.iter().cloned())
        .collect();
    let columns = all.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            all.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in &all {
        for (c, cell) in row.iter().enumerate() {
            text.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] + 1 - cell.chars().count();
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_padded_to_the_widest_cell_plus_one() {
        let text = super::render(
            &["NAME", "IMAGE"],
            &[vec!["python".into(), "fission/python-env".into()]],
        );
        assert_eq!(text, "NAME   IMAGE\npython fission/python-env\n");
    }
}
