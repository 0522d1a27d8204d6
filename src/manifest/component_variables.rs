//! A component's variables as the manifest gives them, expanded once at
//! start-up: `[component.<id>.variables]` (v2) or `[component.config]` (v1),
//! names mapped to templates over the app's `[variables]`. Values are never
//! shown (`Debug` lists the names only). Spin's rule for names lives here
//! too, shared by the manifest's checks and the host APIs' lookups.
//!
//! Not owned here: the host interfaces that read them (`host::variables`).

use std::collections::BTreeMap;
use std::fmt;

/// A component's variables, expanded: name to value. `Debug` shows the
/// names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ComponentVariables {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for ComponentVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

/// Why a variable lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    Undefined(String),
}

impl ComponentVariables {
    pub fn new(values: BTreeMap<String, String>) -> ComponentVariables {
        ComponentVariables { values }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Result<&str, LookupError> {
        validate_name(name)
            .map_err(|reason| LookupError::InvalidName(format!("{name:?}: {reason}")))?;
        self.values.get(name).map(String::as_str).ok_or_else(|| {
            LookupError::Undefined(format!(
                "no variable {name:?}: the component defines {}",
                if self.values.is_empty() {
                    "none".to_string()
                } else {
                    self.values
                        .keys()
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
        })
    }

    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Spin's rule for variable names: lower-case ASCII letters, digits and
/// single underscores, starting with a letter and ending with a letter or
/// digit.
pub fn validate_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("a variable name must not be empty".into());
    };
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "invalid character {c:?}: variable names may contain only lower-case letters, digits and underscores"
        ));
    }
    if !first.is_ascii_lowercase() {
        return Err("a variable name must start with a lower-case letter".into());
    }
    if name.ends_with('_') {
        return Err("a variable name must end with a letter or digit".into());
    }
    if name.contains("__") {
        return Err("a variable name must not contain two underscores in a row".into());
    }
    Ok(())
}
