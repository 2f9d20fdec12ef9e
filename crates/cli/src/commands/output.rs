//! How client commands print: a table for people on a terminal, JSON for scripts (the default
//! when stdout is not a terminal, or `--output json`).

use std::io::IsTerminal;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

impl Format {
    /// `--output` if given, else a table on a terminal and JSON otherwise.
    pub fn resolve(chosen: Option<Format>) -> Format {
        chosen.unwrap_or(if std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        })
    }
}

/// The columns of a table: a header and the JSON field each column shows.
pub type Columns<'a> = &'a [(&'a str, &'a str)];

/// Prints one item: JSON as the API sent it, or `field: value` lines.
pub fn one<T: Serialize>(format: Format, item: &T) {
    let value = serde_json::to_value(item).unwrap_or(Value::Null);
    match format {
        Format::Json => println!("{}", pretty(&value)),
        Format::Table => match &value {
            Value::Object(map) => {
                let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
                for (k, v) in map {
                    println!("{k:width$}  {}", cell(v));
                }
            }
            other => println!("{}", cell(other)),
        },
    }
}

/// Prints a list: a JSON array, or a table of `columns`.
pub fn list<T: Serialize>(format: Format, items: &[T], columns: Columns<'_>) {
    let values: Vec<Value> = items
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect();
    match format {
        Format::Json => println!("{}", pretty(&Value::Array(values))),
        Format::Table => {
            let rows: Vec<Vec<String>> = values
                .iter()
                .map(|v| columns.iter().map(|(_, f)| cell(&v[*f])).collect())
                .collect();
            let headers: Vec<String> = columns.iter().map(|(h, _)| h.to_string()).collect();
            print!("{}", table(&headers, &rows));
        }
    }
}

/// Left-aligned columns two spaces apart.
pub fn table(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// A JSON value as a table cell: strings bare, lists joined, nothing for null.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_its_columns() {
        let t = table(
            &["ID".into(), "NAME".into()],
            &[
                vec!["a".into(), "Acme".into()],
                vec!["longer".into(), "B".into()],
            ],
        );
        assert_eq!(t, "ID      NAME\na       Acme\nlonger  B\n");
    }

    #[test]
    fn cells_show_lists_joined_and_null_empty() {
        assert_eq!(cell(&serde_json::json!(["a", "b"])), "a,b");
        assert_eq!(cell(&Value::Null), "");
        assert_eq!(cell(&serde_json::json!(3)), "3");
    }
}
