//! What every config section declares about its keys, and what the file machinery does with it: render a section
//! as commented TOML (the file `init` writes), list the keys and defaults (what docs/configuration.md must show),
//! and turn a parser error into one line that names `section.key`.

use std::ops::Range;
use std::path::Path;

use super::ConfigError;

/// The kind of value a key takes; it picks the hint for a value of the wrong type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Free text in quotes.
    Text,
    /// An `ip:port` in quotes.
    Address,
    /// A Go duration in quotes (`"3s"`).
    Duration,
    /// Comma-separated entries in one string.
    List,
    /// A path in quotes.
    Path,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Bool,
    /// A table of names to text.
    Table,
    /// An array of tables (`[[ilp.accounts]]`), none by default.
    Tables,
}

/// One key of a section.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// One line for the file and the reference.
    pub(crate) doc: &'static str,
}

/// A config section: its name in the file (`None` for the keys at the top) and its keys, in file order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SectionSchema {
    pub(crate) name: Option<&'static str>,
    /// One line about the section, written above its header.
    pub(crate) doc: &'static str,
    pub(crate) keys: &'static [Key],
}

impl SectionSchema {
    /// The section as commented TOML: each key with the value in `values` and its doc line above it.
    pub(crate) fn render(&self, values: &impl serde::Serialize) -> String {
        let table = toml::Value::try_from(values).ok().and_then(|v| v.as_table().cloned()).unwrap_or_default();
        let mut out = String::new();
        if let Some(name) = self.name {
            out.push_str(&format!("\n# {}\n[{name}]\n", self.doc));
        }
        for key in self.keys {
            if key.kind == Kind::Tables {
                // Arrays of tables go at the end of the file as [[section.key]] blocks; none by default.
                out.push_str(&format!("# {}\n", key.doc));
                continue;
            }
            let value = table.get(key.name).map(|v| v.to_string()).unwrap_or_else(|| "\"\"".into());
            out.push_str(&format!("# {}\n{} = {}\n", key.doc, key.name, value));
        }
        out
    }

    /// Each key as the reference lists it (`` `[p2p] laddr` ``, or `` `profile` `` at the top) with its default
    /// value as TOML.
    pub(crate) fn defaults(&self, values: &impl serde::Serialize) -> Vec<(String, String)> {
        let table = toml::Value::try_from(values).ok().and_then(|v| v.as_table().cloned()).unwrap_or_default();
        self.keys
            .iter()
            .map(|k| {
                let name = match self.name {
                    Some(section) => format!("[{section}] {}", k.name),
                    None => k.name.to_owned(),
                };
                (name, table.get(k.name).map(|v| v.to_string()).unwrap_or_default())
            })
            .collect()
    }
}

/// Where a byte offset of `text` is: its 1-based line and column, and the `section.key` written on that line (the
/// section of a header line, for an unknown section).
fn locate(text: &str, offset: usize) -> (usize, usize, Option<(Option<String>, String)>) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let section = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(['[', ']']).trim().to_owned());
    if line.starts_with('[') {
        let name = line.trim_matches(['[', ']']).trim().to_owned();
        return (line_no, column, Some((None, name)));
    }
    let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches(['"', '\'']).to_owned());
    (line_no, column, key.filter(|k| !k.is_empty()).map(|k| (section, k)))
}

/// When the table around byte `offset` is an entry of an array of tables (`[[ilp.accounts]]`), its index: how many
/// headers of that array come before it.
fn array_entry(text: &str, offset: usize) -> Option<usize> {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..text[..offset].rfind('\n').map_or(0, |i| i + 1)];
    let mut headers = before.lines().map(str::trim).filter(|l| l.starts_with('['));
    let header = headers.next_back()?;
    if !header.starts_with("[[") {
        return None;
    }
    let name = |h: &str| h.split(']').next().unwrap_or("").trim_matches('[').trim().to_owned();
    let this = name(header);
    Some(before.lines().map(str::trim).filter(|l| l.starts_with("[[") && name(l) == this).count() - 1)
}

/// The words of the parser's message that say what was found: `integer `3``, `string "yes"`, `sequence`.
fn found(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("invalid type: ")?;
    Some(rest.split(", expected").next().unwrap_or(rest))
}

/// The closest name to `wanted` among `names`, if it is close enough to be a typo.
fn closest<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|n| (edit_distance(wanted, n), n))
        .filter(|(d, n)| *d <= 3.max(n.len() / 3) || n.starts_with(wanted) || wanted.starts_with(n))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Turns a TOML parse or type error into one line: `section.key: reason (hint)` where a key is involved, else
/// `file line L, column C: reason`.
pub(crate) fn explain(error: &toml::de::Error, text: &str, path: &Path, sections: &[SectionSchema]) -> ConfigError {
    let message = error.message().lines().next().unwrap_or("invalid TOML").trim().to_owned();
    let span: Option<Range<usize>> = error.span();
    let Some((line, column, at)) = span.as_ref().map(|s| locate(text, s.start)) else {
        return ConfigError::Syntax { path: path.to_owned(), line: None, message };
    };
    let header = text.lines().nth(line - 1).is_some_and(|l| l.trim_start().starts_with('['));
    let Some((section, key)) = at.filter(|_| !header || message.starts_with("unknown field")) else {
        return ConfigError::Syntax { path: path.to_owned(), line: Some((line, column)), message };
    };
    let schema = sections.iter().find(|s| s.name == section.as_deref());
    let known = schema.and_then(|s| s.keys.iter().find(|k| k.name == key));
    let key_path = match (&section, array_entry(text, span.as_ref().map_or(0, |s| s.start))) {
        // In an array of tables, the entry too: `ilp.accounts[1].asset_scale`, as the checks after parsing say it.
        (Some(s), Some(i)) => format!("{s}[{i}].{key}"),
        (Some(s), None) => format!("{s}.{key}"),
        (None, _) => key.clone(),
    };
    let reason = if message.starts_with("unknown field") {
        // An unknown key in a section, or an unknown section or key at the top.
        let candidates: Vec<&str> = match schema {
            Some(s) if section.is_some() => s.keys.iter().map(|k| k.name).collect(),
            // Inside an array of tables ([[ilp.accounts]]): its fields are not in a schema.
            None if section.is_some() => Vec::new(),
            _ => sections.iter().flat_map(|s| s.name.into_iter().chain(s.keys.iter().map(|k| k.name))).collect(),
        };
        match closest(&key, candidates.into_iter()) {
            Some(name) => format!("unknown key (did you mean {name}?)"),
            None => "unknown key".to_owned(),
        }
    } else if let Some(k) = known {
        hint(k, &message)
    } else {
        message
    };
    ConfigError::Invalid { key: key_path, reason }
}

/// The reason for a value of the wrong type or syntax, with a hint that fits the key.
fn hint(key: &Key, message: &str) -> String {
    let found = found(message);
    let number = found.and_then(|f| f.strip_prefix("integer ")).map(|n| n.trim_matches('`'));
    match key.kind {
        Kind::Duration => match number {
            Some(n) => format!("expected a duration in quotes; write \"{n}s\" (or \"{n}ms\", \"{n}m\")"),
            None => "expected a duration in quotes, such as \"3s\", \"100ms\" or \"1m30s\"".to_owned(),
        },
        Kind::List if found == Some("sequence") => {
            "expected one string of comma-separated entries, such as \"id@host:port,id@host:port\"".to_owned()
        }
        Kind::Text if found.is_some_and(|f| f.starts_with("floating point")) => {
            let n = found.and_then(|f| f.strip_prefix("floating point ")).unwrap_or("").trim_matches('`');
            format!("expected a decimal in quotes; write \"{n}\"")
        }
        Kind::Text | Kind::Address | Kind::Path | Kind::List if found.is_none() => {
            "expected a value in quotes".to_owned()
        }
        Kind::Text | Kind::Address | Kind::Path | Kind::List => {
            format!("expected text in quotes, found {}", found.unwrap_or("something else"))
        }
        Kind::Integer if message.contains("as i128") || message.contains("out of range") => {
            "the number is too large".to_owned()
        }
        Kind::Integer => format!("expected a whole number without quotes, found {}", found.unwrap_or("something else")),
        Kind::Bool => format!("expected true or false without quotes, found {}", found.unwrap_or("something else")),
        Kind::Table => "expected a table of names to values in quotes, such as { app = \"dev\" }".to_owned(),
        Kind::Tables => format!("expected [[tables]]: {}", message.lines().next().unwrap_or(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_traced_to_its_section_and_key() {
        let text = "profile = \"tm2\"\n\n[p2p]\n  dial_timeout = 3\n[pp2p]\n";
        assert_eq!(locate(text, text.find('3').unwrap()), (4, 18, Some((Some("p2p".into()), "dial_timeout".into()))));
        assert_eq!(locate(text, 0), (1, 1, Some((None, "profile".into()))));
        assert_eq!(locate(text, text.find("pp2p").unwrap()), (5, 2, Some((None, "pp2p".into()))));
        assert_eq!(locate(text, 16).2, None, "a blank line names nothing");
        let wide = "moniker = \"caf\u{e9}\"";
        assert_eq!(locate(wide, 14).0, 1, "an offset inside a character is read as that character");
    }

    #[test]
    fn near_misses_are_suggested() {
        let names = ["max_num_inbound_peers", "max_num_outbound_peers", "laddr"];
        assert_eq!(closest("max_num_inbound", names.into_iter()), Some("max_num_inbound_peers"));
        assert_eq!(closest("ladr", names.into_iter()), Some("laddr"));
        assert_eq!(closest("something_else_entirely", names.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
