//! A component's build table, as in Spin: `[component.<id>.build]` (v2) or
//! `[component.build]` (v1) with `command` (a string, or a list run in
//! order), `workdir` (relative to the manifest's folder) and `watch` (globs
//! whose changes call for a rebuild). Read and validated here into
//! [`BuildConfig`].
//!
//! Not owned here: running the commands (`crate::build`), watching files.

use super::error::{ManifestError, ManifestErrorKind as K};
use super::shared::Ctx;
use serde::Deserialize;
use std::path::PathBuf;

/// The build table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// A string or a list of strings; checked by hand for a clearer error
    /// than serde's "did not match any variant".
    command: toml::Value,
    workdir: Option<String>,
    #[serde(default)]
    watch: Vec<String>,
}

/// How a component is built: validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildConfig {
    /// Shell commands, run in order through `sh -c` (as Spin runs them);
    /// never empty, and none of them blank.
    pub commands: Vec<String>,
    /// `workdir` as written, if it was.
    pub workdir: Option<String>,
    /// Where the commands run: `workdir` resolved against the manifest's
    /// folder, or that folder itself.
    pub dir: PathBuf,
    /// Globs relative to [`BuildConfig::dir`] (as in Spin, the workdir when
    /// set): a change to a matching file calls for a rebuild.
    pub watch: Vec<String>,
}

impl Ctx<'_> {
    /// Validates a component's build table; `line` finds a key's line,
    /// `field` names a key of the table (`component.x.build.command`).
    pub fn build(
        &self,
        line: &dyn Fn(&str) -> Option<usize>,
        field: &dyn Fn(&str) -> String,
        spec: &BuildSpec,
    ) -> Result<BuildConfig, ManifestError> {
        // Every refusal here names the key, its line and how to write it.
        let bad = |key: &str, msg: String, hint: &str| {
            self.at
                .error(K::BadValue, line(key), Some(&field(key)), msg)
                .hint(hint)
        };
        let bad_command = |msg: String| {
            bad(
                "command",
                msg,
                "write command = \"make\" or command = [\"npm install\", \"npm run build\"]",
            )
        };
        let commands = match &spec.command {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(bad_command(format!(
                        "{other} is not a command: each entry of the list is a string"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(bad_command(format!(
                    "{other} is not a command: write a string or a list of strings"
                )));
            }
        };
        if commands.is_empty() {
            return Err(bad_command("the command list is empty".into()));
        }
        if commands.iter().any(|c| c.trim().is_empty()) {
            return Err(bad_command("a build command is empty".into()));
        }
        if let Some(w) = &spec.workdir
            && w.trim().is_empty()
        {
            return Err(bad(
                "workdir",
                "the workdir is empty".into(),
                "remove it to build in the manifest's folder, or name a folder relative to it",
            ));
        }
        for w in &spec.watch {
            if let Err(e) = glob::Pattern::new(w) {
                return Err(bad(
                    "watch",
                    format!("watch pattern {w:?} is not a valid glob: {e}"),
                    "such as \"src/**/*.rs\"; patterns are relative to the workdir",
                ));
            }
        }
        let dir = match &spec.workdir {
            Some(w) => self.dir.join(w),
            None => self.dir.to_path_buf(),
        };
        Ok(BuildConfig {
            commands,
            workdir: spec.workdir.clone(),
            dir,
            watch: spec.watch.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::{ManifestErrorKind, Sources, parse_with};
    use std::path::Path;

    fn parse(text: &str) -> Result<crate::manifest::App, crate::manifest::ManifestError> {
        parse_with(
            Path::new("/app/spin.toml"),
            text,
            &|_| None,
            Sources::MayBeMissing,
        )
    }

    const V2: &str = "spin_manifest_version = 2\n[application]\nname = \"a\"\n[application.trigger.redis]\naddress = \"redis://localhost:6379\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"x\"\n[component.x]\nsource = \"x.wasm\"\n";

    #[test]
    fn v2_build_tables_are_read_with_a_string_or_a_list() {
        let app = parse(&format!(
            "{V2}[component.x.build]\ncommand = \"make\"\nwatch = [\"src/*.c\"]\n"
        ))
        .unwrap();
        let b = app.components[0].build.clone().unwrap();
        assert_eq!(b.commands, ["make"]);
        assert_eq!(b.dir, Path::new("/app"));
        assert_eq!(b.watch, ["src/*.c"]);

        let app = parse(&format!(
            "{V2}[component.x.build]\ncommand = [\"a\", \"b\"]\nworkdir = \"sub\"\n"
        ))
        .unwrap();
        let b = app.components[0].build.clone().unwrap();
        assert_eq!(b.commands, ["a", "b"]);
        assert_eq!(b.dir, Path::new("/app/sub"));
        assert_eq!(b.workdir.as_deref(), Some("sub"));

        assert!(parse(V2).unwrap().components[0].build.is_none());
    }

    #[test]
    fn v1_build_tables_are_read() {
        let text = "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://localhost:6379\" }\n[[component]]\nid = \"x\"\nsource = \"x.wasm\"\n[component.build]\ncommand = \"make\"\nworkdir = \"w\"\n[component.trigger]\nchannel = \"c\"\n";
        let app = parse(text).unwrap();
        let b = app.components[0].build.clone().unwrap();
        assert_eq!(b.commands, ["make"]);
        assert_eq!(b.dir, Path::new("/app/w"));
    }

    #[test]
    fn bad_build_tables_name_the_field() {
        for (table, kind, field, line) in [
            (
                "command = \"make\"\ncomand = \"x\"\n",
                ManifestErrorKind::UnknownField,
                "component.x.build.comand",
                13,
            ),
            (
                "command = 3\n",
                ManifestErrorKind::BadValue,
                "component.x.build.command",
                12,
            ),
            (
                "command = []\n",
                ManifestErrorKind::BadValue,
                "component.x.build.command",
                12,
            ),
            (
                "command = [\"a\", \"  \"]\n",
                ManifestErrorKind::BadValue,
                "component.x.build.command",
                12,
            ),
            (
                "command = \"a\"\nworkdir = \"\"\n",
                ManifestErrorKind::BadValue,
                "component.x.build.workdir",
                13,
            ),
            (
                "command = \"a\"\nwatch = [\"src/[\"]\n",
                ManifestErrorKind::BadValue,
                "component.x.build.watch",
                13,
            ),
            (
                "watch = [\"a\"]\n",
                ManifestErrorKind::Syntax,
                "component.x.build",
                11,
            ),
        ] {
            let e = parse(&format!("{V2}[component.x.build]\n{table}")).unwrap_err();
            assert_eq!(e.kind, kind, "{table}: {e}");
            assert_eq!(e.field.as_deref(), Some(field), "{table}: {e}");
            assert_eq!(e.line, Some(line), "{table}: {e}");
        }
    }

    #[test]
    fn a_missing_source_is_an_error_except_for_build() {
        let e = parse_with(
            Path::new("/app/spin.toml"),
            V2,
            &|_| None,
            Sources::MustExist,
        )
        .unwrap_err();
        assert_eq!(e.kind, ManifestErrorKind::MissingSource);
        assert!(parse(V2).is_ok());
    }
}
