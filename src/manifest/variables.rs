//! Spin's application variables and `{{ name }}` templates.
//!
//! `[variables]` declares names with a `default` or `required = true`; the
//! value comes from `SPIN_VARIABLE_<NAME>` in the environment (upper-cased),
//! else the default. Templates may appear in trigger addresses and channels.
//! The `{{ ... }}` scan itself (`fill_braces`) also fills `new`'s template
//! files (`templates::render`).

use serde::Deserialize;
use std::collections::BTreeMap;

/// One `[variables]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[allow(dead_code)] // documentation for people, accepted and ignored
    pub description: Option<String>,
}

/// Variable values, resolved once.
#[derive(Debug, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
    declared: BTreeMap<String, VariableDecl>,
}

impl Variables {
    /// Resolves every declared variable; `Err` names the first required one
    /// that has no value.
    pub fn resolve(
        declared: &BTreeMap<String, VariableDecl>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Variables, String> {
        let mut values = BTreeMap::new();
        for (name, decl) in declared {
            let env_name = env_name(name);
            match env(&env_name).or_else(|| decl.default.clone()) {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None if decl.required => {
                    return Err(format!(
                        "variable {name:?} is required but has no value: set {env_name} in the environment or give it a default"
                    ));
                }
                None => {}
            }
        }
        Ok(Variables {
            values,
            declared: declared.clone(),
        })
    }

    /// Expands `{{ name }}` in `template`.
    pub fn expand(&self, template: &str) -> Result<String, String> {
        // The template itself is never echoed: it may be an address holding
        // a password. The error's line and field locate it.
        let unclosed = || "unclosed template: a `{{` has no matching `}}`".to_string();
        fill_braces(template, unclosed, |name| match self.values.get(name) {
            Some(v) => Ok(v.clone()),
            None if self.declared.contains_key(name) => Err(format!(
                "variable {name:?} has no value: set {} or give it a default",
                env_name(name)
            )),
            None => Err(format!(
                "variable {name:?} is not declared: add it under [variables], for example `{name} = {{ default = \"...\" }}`"
            )),
        })
    }

    /// Whether `name` is a secret (its value is never shown).
    #[allow(dead_code)]
    pub fn is_secret(&self, name: &str) -> bool {
        self.declared.get(name).is_some_and(|d| d.secret)
    }
}

/// Replaces every `{{ ... }}` in `text` with what `fill` makes of the
/// trimmed text between the braces; `unclosed` makes the error for a `{{`
/// without its `}}`. Manifest variables and `new`'s template files both
/// fill their placeholders through it.
pub fn fill_braces(
    text: &str,
    unclosed: impl FnOnce() -> String,
    mut fill: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(unclosed());
        };
        out.push_str(&fill(after[..end].trim())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(default: Option<&str>, required: bool) -> VariableDecl {
        VariableDecl {
            default: default.map(str::to_string),
            required,
            secret: false,
            description: None,
        }
    }

    #[test]
    fn environment_wins_over_default_and_unknown_names_are_errors() {
        let mut d = BTreeMap::new();
        d.insert("port".to_string(), decl(Some("6379"), false));
        d.insert("room".to_string(), decl(Some("lobby"), false));
        let env = |k: &str| (k == "SPIN_VARIABLE_PORT").then(|| "7000".to_string());
        let v = Variables::resolve(&d, &env).unwrap();
        assert_eq!(
            v.expand("redis://h:{{ port }}/{{room}}").unwrap(),
            "redis://h:7000/lobby"
        );
        assert!(v.expand("{{ nope }}").unwrap_err().contains("not declared"));
        assert!(v.expand("{{ port").unwrap_err().contains("unclosed"));
        let e = v.expand("redis://u:hunter2@h:{{ port").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn required_without_value_is_an_error() {
        let mut d = BTreeMap::new();
        d.insert("token".to_string(), decl(None, true));
        let e = Variables::resolve(&d, &|_| None).unwrap_err();
        assert!(e.contains("SPIN_VARIABLE_TOKEN"), "{e}");
    }
}
