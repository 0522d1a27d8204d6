//! [`ManifestError`]: a manifest problem, located by file, line and field,
//! with a hint on how to fix it; and the [`Locator`] that finds those lines.
//!
//! Syntax and type errors come from the TOML parser with a byte span and,
//! through `serde_path_to_error`, the field's path. Semantic errors (a
//! duplicate id, a missing file) are found after parsing; their line is found
//! by looking for the key in the text, which is exact for the manifests people
//! write (one key per line) and falls back to the enclosing table's line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of problem a manifest has; callers and tests branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestErrorKind {
    Read,
    Syntax,
    UnknownField,
    Version,
    DuplicateId,
    InvalidId,
    MissingSource,
    EmptyChannel,
    BadAddress,
    UnknownExecutor,
    UnknownComponent,
    NoTrigger,
    TriggerType,
    Variable,
    BadValue,
    Files,
}

/// A manifest problem. Its `Display` is one line (plus a hint line):
/// `spin.toml:12: component[1].id: duplicate component id "shout" ...`.
#[derive(Debug, Clone)]
pub struct ManifestError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub kind: ManifestErrorKind,
    pub message: String,
    pub hint: Option<String>,
}

impl ManifestError {
    pub fn new(file: &Path, kind: ManifestErrorKind, message: impl Into<String>) -> Self {
        ManifestError {
            file: file.to_path_buf(),
            line: None,
            field: None,
            kind,
            // Whatever the message quotes from the file (a TOML type error
            // echoes the value it refused), credentials in a URL never show.
            message: crate::address::redact_credentials(&message.into()),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Writes where a mistake in a configuration file is, as every such error
/// opens: `<file>[:<line>]: [<field>: ]`.
pub fn write_place(
    f: &mut fmt::Formatter<'_>,
    file: &Path,
    line: Option<usize>,
    field: Option<&str>,
) -> fmt::Result {
    write!(f, "{}", file.display())?;
    if let Some(line) = line {
        write!(f, ":{line}")?;
    }
    write!(f, ": ")?;
    if let Some(field) = field {
        write!(f, "{field}: ")?;
    }
    Ok(())
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_place(f, &self.file, self.line, self.field.as_deref())?;
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// Finds lines in a manifest's text and builds located errors.
///
/// The text is split into lines and its table headers indexed once, so that
/// finding the line of the n-th `[[trigger.redis]]` and a key after it costs
/// the same for the last of 10 000 triggers as for the first (a scan from
/// the top per trigger made loading quadratic in the number of triggers).
pub struct Locator<'a> {
    pub file: &'a Path,
    text: &'a str,
    /// Every line, trimmed; line `n` (1-based) is `lines[n - 1]`.
    lines: Vec<&'a str>,
    /// The 1-based lines of each table header (`[x]` or `[[x]]`, comment
    /// removed), in file order.
    headers: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Locator<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        let lines: Vec<&'a str> = text.lines().map(str::trim).collect();
        let mut headers: HashMap<&'a str, Vec<usize>> = HashMap::new();
        for (i, l) in lines.iter().enumerate() {
            let code = without_comment(l);
            if code.starts_with('[') {
                headers.entry(code).or_default().push(i + 1);
            }
        }
        Locator {
            file,
            text,
            lines,
            headers,
        }
    }

    pub fn error(
        &self,
        kind: ManifestErrorKind,
        line: Option<usize>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError {
            file: self.file.to_path_buf(),
            line,
            field: field.map(str::to_string),
            kind,
            // Whatever the message quotes from the file (a TOML type error
            // echoes the value it refused), credentials in a URL never show.
            message: crate::address::redact_credentials(&message.into()),
            hint: None,
        }
    }

    /// 1-based line of a byte offset.
    pub fn line_at(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// Lines from 1-based line `from` on (all of them for 0), numbered.
    fn lines_from(&self, from: usize) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        let first = from.saturating_sub(1).min(self.lines.len());
        self.lines[first..]
            .iter()
            .enumerate()
            .map(move |(i, l)| (first + i + 1, *l))
    }

    /// The line of the `nth` (0-based) table header exactly equal to `header`
    /// (such as `[[component]]` or `[component.shout]`).
    pub fn header(&self, header: &str, nth: usize) -> Option<usize> {
        self.headers.get(header)?.get(nth).copied()
    }

    /// The first line at or after `from` that sets `key` (as `key =`, or
    /// inside an inline table as `key =`), stopping at the next `[[`-array
    /// header so that a key is not found in the following component.
    pub fn key_after(&self, from: usize, key: &str) -> Option<usize> {
        for (n, l) in self.lines_from(from) {
            if n > from && l.starts_with("[[") {
                return None;
            }
            if sets_key(l, key) {
                return Some(n);
            }
        }
        None
    }

    /// The first line anywhere that sets `key`.
    pub fn line_of_key(&self, key: &str) -> Option<usize> {
        self.lines_from(0)
            .find(|(_, l)| sets_key(l, key))
            .map(|(n, _)| n)
    }

    /// Converts a TOML/serde error, with the field path when known.
    pub fn toml_error(&self, path: Option<String>, e: &toml::de::Error) -> ManifestError {
        let line = e.span().map(|s| self.line_at(s.start));
        let message = e.message().trim().to_string();
        let kind = if message.starts_with("unknown field") {
            ManifestErrorKind::UnknownField
        } else if message.starts_with("unknown variant") {
            ManifestErrorKind::UnknownExecutor
        } else {
            ManifestErrorKind::Syntax
        };
        let path = path.filter(|p| !p.is_empty() && p != ".");
        let mut err = self.error(kind, line, path.as_deref(), message);
        err = match kind {
            ManifestErrorKind::UnknownField => err.hint("remove the field or fix its spelling; the expected fields are listed above"),
            ManifestErrorKind::UnknownExecutor => err.hint("use executor = { type = \"spin\" } for components or { type = \"wagi\" } for WASI core modules"),
            _ => err,
        };
        err
    }
}

/// A line without its comment, trimmed.
fn without_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

fn sets_key(line: &str, key: &str) -> bool {
    let code = line.split('#').next().unwrap_or("");
    let mut rest = code;
    while let Some(pos) = rest.find(key) {
        let before = rest[..pos].chars().next_back();
        let after = rest[pos + key.len()..].trim_start();
        let boundary = before.is_none_or(|c| c == '{' || c == ',' || c.is_whitespace());
        if boundary && after.starts_with('=') {
            return true;
        }
        rest = &rest[pos + key.len()..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_plain_and_inline_tables() {
        let text = "a = 1\n[[component]]\nid = \"x\"\ntrigger = { channel = \"c\", executor = 1 }\n[[component]]\nid = \"y\"\n";
        let l = Locator::new(Path::new("spin.toml"), text);
        assert_eq!(l.header("[[component]]", 1), Some(5));
        assert_eq!(l.key_after(2, "channel"), Some(4));
        assert_eq!(l.key_after(2, "source"), None);
        assert_eq!(l.key_after(5, "id"), Some(6));
        assert_eq!(l.line_of_key("a"), Some(1));
        assert_eq!(l.line_at(7), 2);
    }
}
