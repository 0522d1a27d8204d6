//! `spin-redis new -t TEMPLATE NAME`: make a new app folder from an
//! embedded template, as `spin new` does. Parameter values come from `-v
//! KEY=VALUE`, else (on a terminal, without `--accept-defaults`) from a
//! prompt, else from the template's defaults. Refused before anything is
//! written: an unknown template, a bad name or `-v`, an output folder that
//! exists and is not empty.

use super::render::{kebab_case, render};
use super::{Param, Template, find, known};
use crate::failure::Failure;
use anyhow::{Context as _, anyhow};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal as _, Write};
use std::path::{Path, PathBuf};

/// `spin-redis new`'s flags, Spin's names.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The template to start from; `spin-redis templates list` shows them.
    #[arg(short = 't', long = "template", value_name = "TEMPLATE")]
    pub template: Option<String>,

    /// The new app's name; its component id is the name in kebab-case.
    /// Spin's positional form `TEMPLATE NAME` (without -t) is accepted too.
    #[arg(value_name = "NAME", num_args = 1..=2, required = true)]
    pub name: Vec<String>,

    /// A parameter's value, without being asked (repeatable):
    /// project-description, redis-address, redis-channel (redis-stream for
    /// redis-stream-c).
    #[arg(short = 'v', long = "value", value_name = "KEY=VALUE")]
    pub values: Vec<String>,

    /// Take the default of every parameter not given with -v, without asking
    /// (also what happens when stdin or stderr is not a terminal).
    #[arg(long)]
    pub accept_defaults: bool,

    /// The folder to create [default: ./NAME]; if it exists it must be empty.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
}

/// `spin-redis new`: returns the exit code.
pub fn new(args: NewArgs) -> Result<u8, Failure> {
    let (template, name) = template_and_name(args.template.as_deref(), &args.name)?;
    let template = match template {
        Some(id) => find(id).ok_or_else(|| {
            Failure::usage(anyhow!(
                "unknown template {id:?}; the templates are: {}",
                known()
            ))
        })?,
        None => {
            return Err(Failure::usage(anyhow!(
                "no template given: use -t TEMPLATE, one of: {}",
                known()
            )));
        }
    };
    check_name(name).map_err(Failure::usage)?;
    let mut values = given_values(template, &args.values).map_err(Failure::usage)?;
    let dir = args.output.clone().unwrap_or_else(|| PathBuf::from(name));
    check_output(&dir).map_err(Failure::usage)?;

    let interactive =
        !args.accept_defaults && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    for p in template.params {
        if values.contains_key(p.name) {
            continue;
        }
        let value = if interactive {
            ask(p, &mut std::io::stdin().lock(), &mut std::io::stderr())
                .context("cannot read the answer")
                .map_err(Failure::runtime)?
        } else {
            p.default.to_string()
        };
        values.insert(p.name, value);
    }
    values.insert("project-name", name.to_string());

    let mut rendered = Vec::new();
    for (path, text) in template.files {
        let text = render(path, text, &values)
            .map_err(|e| Failure::runtime(anyhow!("template {:?} is broken: {e}", template.id)))?;
        rendered.push((*path, text));
    }
    write_files(&dir, &rendered).map_err(Failure::runtime)?;

    println!(
        "Created app {:?} (component {:?}) from template {} in {}",
        name,
        kebab_case(name),
        template.id,
        dir.display()
    );
    println!("Next: see {}/README.md, or", dir.display());
    println!("  cd {}", dir.display());
    println!("  spin-redis build");
    println!("  spin-redis up");
    Ok(0)
}

/// The template and the app's name from `-t TEMPLATE NAME` or Spin's
/// positional `TEMPLATE NAME`.
fn template_and_name<'a>(
    flag: Option<&'a str>,
    words: &'a [String],
) -> Result<(Option<&'a str>, &'a str), Failure> {
    match (flag, words) {
        (flag, [name]) => Ok((flag, name)),
        (None, [template, name]) => Ok((Some(template), name)),
        (Some(t), [w, _]) => Err(Failure::usage(anyhow!(
            "two templates given ({t:?} with -t, and {w:?}): use -t TEMPLATE NAME or TEMPLATE NAME"
        ))),
        _ => Err(Failure::usage(anyhow!(
            "give the app's name: -t TEMPLATE NAME"
        ))),
    }
}

/// The app's name must make a component id and a package name in every
/// language: a letter first, then letters, digits, '-', '_' or spaces.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' '));
    if ok {
        return Ok(());
    }
    Err(anyhow!(
        "app name {name:?} is not valid: start it with a letter and use only letters, digits, '-', '_' and spaces"
    ))
}

/// The `-v KEY=VALUE` values, each checked; an error names the bad one.
fn given_values(
    template: &Template,
    raw: &[String],
) -> anyhow::Result<BTreeMap<&'static str, String>> {
    let mut values = BTreeMap::new();
    for v in raw {
        let Some((key, value)) = v.split_once('=') else {
            return Err(anyhow!("-v {v:?} is not KEY=VALUE"));
        };
        let Some(p) = template.params.iter().find(|p| p.name == key) else {
            let names: Vec<&str> = template.params.iter().map(|p| p.name).collect();
            return Err(anyhow!(
                "-v {key:?}: template {} has no parameter {key:?}; its parameters are: {}",
                template.id,
                names.join(", ")
            ));
        };
        check_value(p, value).map_err(|why| anyhow!("-v {key}={value:?}: {why}"))?;
        values.insert(p.name, value.to_string());
    }
    Ok(values)
}

/// A value goes into TOML, JSON and source strings as it is: refuse what
/// would need escaping there, then the parameter's own check.
fn check_value(p: &Param, value: &str) -> Result<(), String> {
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '"' | '\\') || c.is_control())
    {
        return Err(format!(
            "{} may not hold {c:?} (values are written into TOML and JSON strings as they are)",
            p.name
        ));
    }
    (p.check)(value).map_err(|why| format!("{} is not valid: {why}", p.name))
}

/// The output folder may exist only if it is an empty folder.
fn check_output(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let shown = dir.display().to_string();
    if !dir.is_dir() {
        return Err(anyhow!("output {shown:?} exists and is not a folder"));
    }
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the output folder {shown:?}"))?;
    if entries.next().is_some() {
        return Err(anyhow!(
            "output folder {shown:?} already exists and is not empty; choose another with -o DIR"
        ));
    }
    Ok(())
}

/// Asks for one parameter on a terminal, as Spin does (`Prompt [default]: `);
/// an empty answer or end of input takes the default, and a refused value
/// is asked again.
fn ask(p: &Param, input: &mut dyn BufRead, out: &mut dyn Write) -> std::io::Result<String> {
    loop {
        if p.default.is_empty() {
            write!(out, "{}: ", p.prompt)?;
        } else {
            write!(out, "{} [{}]: ", p.prompt, p.default)?;
        }
        out.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            writeln!(out)?;
            return Ok(p.default.to_string());
        }
        let answer = line.trim_end_matches(['\n', '\r']);
        let value = if answer.is_empty() { p.default } else { answer };
        match check_value(p, value) {
            Ok(()) => return Ok(value.to_string()),
            Err(why) => writeln!(out, "  {why}; try again")?,
        }
    }
}

fn write_files(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    for (path, text) in files {
        let to = dir.join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).with_context(|| {
                format!(
                    "cannot create the folder {:?}",
                    parent.display().to_string()
                )
            })?;
        }
        std::fs::write(&to, text)
            .with_context(|| format!("cannot write {:?}", to.display().to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::TEMPLATES;
    use super::*;

    #[test]
    fn the_template_comes_from_the_flag_or_first_in_spins_positional_form() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let one = words(&["hello"]);
        assert_eq!(
            template_and_name(Some("redis-rust"), &one).ok(),
            Some((Some("redis-rust"), "hello"))
        );
        let two = words(&["redis-rust", "hello"]);
        assert_eq!(
            template_and_name(None, &two).ok(),
            Some((Some("redis-rust"), "hello"))
        );
        assert!(template_and_name(Some("redis-c"), &two).is_err());
        assert_eq!(template_and_name(None, &one).ok(), Some((None, "hello")));
    }

    fn template() -> &'static Template {
        &TEMPLATES[0]
    }

    #[test]
    fn prompts_take_answers_defaults_and_ask_again() {
        let p = &template().params[1]; // redis-address
        let mut out = Vec::new();
        let answer = ask(p, &mut &b"\n"[..], &mut out).unwrap();
        assert_eq!(answer, "redis://localhost:6379");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Redis address [redis://localhost:6379]: "
        );

        let mut out = Vec::new();
        let answer = ask(p, &mut &b"http://x\nredis://h:1\n"[..], &mut out).unwrap();
        assert_eq!(answer, "redis://h:1");
        assert!(String::from_utf8_lossy(&out).contains("try again"));

        let mut out = Vec::new();
        assert_eq!(
            ask(p, &mut &b""[..], &mut out).unwrap(),
            "redis://localhost:6379"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let t = template();
        let e = given_values(t, &["redis-chanel=x".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"redis-chanel\"") && e.contains("redis-channel"),
            "{e}"
        );
        let e = given_values(t, &["novalue".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"novalue\" is not KEY=VALUE"), "{e}");
        let e = given_values(t, &["redis-address=http://x".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("redis-address"), "{e}");
        let e = given_values(t, &["project-description=say \"hi\"".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("project-description may not hold '\"'"), "{e}");
        let v = given_values(t, &["redis-channel=a=b".into()]).unwrap();
        assert_eq!(v["redis-channel"], "a=b");
    }

    #[test]
    fn names_must_make_ids() {
        assert!(check_name("hello-world").is_ok());
        assert!(check_name("Hello World 2").is_ok());
        for bad in ["", "2fast", "-x", "a/b", "a.b", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
