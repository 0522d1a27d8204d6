//! Fills a template file: `{{ name }}` and `{{ name | filter }}`, the part of
//! Spin's Liquid templates that Spin's own templates use, with Spin's case
//! filters (`kebab_case`, `snake_case`, `pascal_case`).
//!
//! Why our own and not a Liquid engine: the templates are ours and use
//! nothing else (no tags, loops or conditions), and a dozen lines keep the
//! binary free of a template language it would otherwise ship. An unknown
//! name or filter is an error, so a typo in a template fails the unit test
//! that renders every template, never a user.

use crate::manifest::fill_braces;
use std::collections::BTreeMap;

/// Renders `text` (from the template file `file`, named in errors) with
/// `values` (parameter name to value).
pub fn render(file: &str, text: &str, values: &BTreeMap<&str, String>) -> Result<String, String> {
    let unclosed = || format!("template file {file:?}: a `{{{{` has no matching `}}}}`");
    fill_braces(text, unclosed, |inside| {
        let mut parts = inside.split('|').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let mut value = values
            .get(name)
            .cloned()
            .ok_or_else(|| format!("template file {file:?}: unknown parameter {name:?}"))?;
        for filter in parts {
            value = match filter {
                "kebab_case" => kebab_case(&value),
                "snake_case" => snake_case(&value),
                "pascal_case" => pascal_case(&value),
                other => {
                    return Err(format!("template file {file:?}: unknown filter {other:?}"));
                }
            };
        }
        Ok(value)
    })
}

/// `My HTTPServer_v2` -> `my-http-server-v2`.
pub fn kebab_case(s: &str) -> String {
    words(s).join("-")
}

/// `My HTTPServer_v2` -> `my_http_server_v2`.
pub fn snake_case(s: &str) -> String {
    words(s).join("_")
}

/// `my-http-server` -> `MyHttpServer`.
pub fn pascal_case(s: &str) -> String {
    words(s)
        .iter()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The lower-case words of `s`: split at every character that is not a
/// letter or digit, before an upper-case letter that follows a lower-case
/// letter or digit, and before the last capital of a run of capitals
/// followed by a lower-case letter (`HTTPServer` -> `http`, `server`).
/// Digits stay with the word they follow, so `app2go` is one word.
fn words(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_uppercase() && !word.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                words.push(std::mem::take(&mut word));
            }
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_filters_split_words_like_spin() {
        assert_eq!(kebab_case("hello-world"), "hello-world");
        assert_eq!(kebab_case("Hello World"), "hello-world");
        assert_eq!(kebab_case("helloWorld"), "hello-world");
        assert_eq!(kebab_case("My HTTPServer_v2"), "my-http-server-v2");
        assert_eq!(snake_case("hello-world"), "hello_world");
        assert_eq!(snake_case("app2go"), "app2go");
        assert_eq!(pascal_case("hello-world"), "HelloWorld");
        assert_eq!(pascal_case("my_app"), "MyApp");
    }

    #[test]
    fn snake_case_is_kebab_case_with_underscores() {
        // A Rust template names the wasm file after the crate: Cargo turns
        // the package name's (kebab_case) dashes into underscores.
        for name in [
            "hello-rust",
            "Hello Rust 2",
            "xMLParser",
            "a_b-c d",
            "v2App",
        ] {
            assert_eq!(
                kebab_case(name).replace('-', "_"),
                snake_case(name),
                "{name}"
            );
        }
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_refused() {
        let values = BTreeMap::from([("project-name", "My App".to_string())]);
        assert_eq!(
            render(
                "f",
                "a {{project-name}} b {{ project-name | kebab_case }} {{project-name|snake_case}}",
                &values
            )
            .unwrap(),
            "a My App b my-app my_app"
        );
        assert!(
            render("f", "{{nope}}", &values)
                .unwrap_err()
                .contains("\"nope\"")
        );
        assert!(
            render("f", "{{project-name | upcase}}", &values)
                .unwrap_err()
                .contains("\"upcase\"")
        );
        assert!(render("f", "{{project-name", &values).is_err());
        assert_eq!(
            render("f", "no placeholders }}", &values).unwrap(),
            "no placeholders }}"
        );
    }
}
