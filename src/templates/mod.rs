//! The app templates of `spin-redis new` and `spin-redis templates list`, as
//! Spin's `redis-rust`, `redis-python`... templates: each is a folder under
//! `src/templates/<id>/` whose files are embedded in the binary (so `new`
//! works offline) and filled by [`render`] with Spin's parameter names
//! (`project-name`, `project-description`, `redis-address`, `redis-channel`).
//!
//! Tour: this file holds the table of templates, their parameters and the
//! `templates` command; `new` makes an app from one; `render` fills
//! `{{ placeholders }}`. Not owned here: building the app (`crate::build`).

mod new;
pub mod render;

pub use new::{NewArgs, new};

use crate::failure::Failure;

/// One template: an id, a line for `templates list`, its parameters and its
/// files.
pub struct Template {
    pub id: &'static str,
    pub description: &'static str,
    /// Asked for in this order; `project-name` is `new`'s NAME and never asked.
    pub params: &'static [Param],
    /// Path in the new app (`/`-separated) and contents.
    pub files: &'static [(&'static str, &'static str)],
}

/// A template parameter, with Spin's name, prompt and default.
pub struct Param {
    pub name: &'static str,
    pub prompt: &'static str,
    pub default: &'static str,
    /// Checks a value; `Err` says why it is refused.
    pub check: fn(&str) -> Result<(), String>,
}

const DESCRIPTION: Param = Param {
    name: "project-description",
    prompt: "Description",
    default: "",
    check: |_| Ok(()),
};

const ADDRESS: Param = Param {
    name: "redis-address",
    prompt: "Redis address",
    default: "redis://localhost:6379",
    check: |v| {
        crate::address::RedisAddress::parse(v)
            .map(|_| ())
            .map_err(|e| e.to_string())
    },
};

const CHANNEL: Param = Param {
    name: "redis-channel",
    prompt: "Redis channel",
    default: "messages",
    check: name_check,
};

const STREAM: Param = Param {
    name: "redis-stream",
    prompt: "Redis stream",
    default: "messages",
    check: name_check,
};

/// A channel or stream name: not empty, no spaces (Spin's `{{ }}` variable
/// templates are not expanded in a template's output either).
fn name_check(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("it is empty".into());
    }
    if v.chars().any(char::is_whitespace) {
        return Err("it holds a space".into());
    }
    Ok(())
}

const CHANNEL_PARAMS: &[Param] = &[DESCRIPTION, ADDRESS, CHANNEL];
const STREAM_PARAMS: &[Param] = &[DESCRIPTION, ADDRESS, STREAM];

/// `(path, include_str!(<template>/<path>))` for each listed file.
macro_rules! files {
    ($dir:literal: $($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!($dir, "/", $path)))),*]
    };
}

/// Every template, in the order `templates list` shows them.
pub const TEMPLATES: &[Template] = &[
    Template {
        id: "redis-rust",
        description: "Redis message handler using Rust (Spin SDK 7, a component)",
        params: CHANNEL_PARAMS,
        files: files!("redis-rust": ".gitignore", "Cargo.lock", "Cargo.toml", "README.md", "spin.toml", "src/lib.rs"),
    },
    Template {
        id: "redis-python",
        description: "Redis message handler using Python (componentize-py, Spin SDK)",
        params: CHANNEL_PARAMS,
        files: files!("redis-python": ".gitignore", "README.md", "app.py", "requirements.txt", "spin.toml"),
    },
    Template {
        id: "redis-go",
        description: "Redis message handler using Go for WASI (wagi executor)",
        params: CHANNEL_PARAMS,
        files: files!("redis-go": ".gitignore", "README.md", "go.mod", "main.go", "spin.toml"),
    },
    Template {
        id: "redis-c",
        description: "Redis message handler using C and wasi-libc (wagi executor)",
        params: CHANNEL_PARAMS,
        files: files!("redis-c": ".gitignore", "README.md", "main.c", "spin.toml"),
    },
    Template {
        id: "redis-assemblyscript",
        description: "Redis message handler using AssemblyScript (wagi executor)",
        params: CHANNEL_PARAMS,
        files: files!("redis-assemblyscript": ".gitignore", "README.md", "asconfig.json", "assembly/index.ts", "assembly/tsconfig.json", "package-lock.json", "package.json", "spin.toml"),
    },
    Template {
        id: "redis-stream-c",
        description: "Redis Stream consumer group handler using C (wagi executor, at-least-once)",
        params: STREAM_PARAMS,
        files: files!("redis-stream-c": ".gitignore", "README.md", "main.c", "spin.toml"),
    },
];

/// The template named `id`.
pub fn find(id: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.id == id)
}

/// The known template ids, for error messages.
pub fn known() -> String {
    TEMPLATES
        .iter()
        .map(|t| t.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `spin-redis templates`' flags.
#[derive(Debug, clap::Args)]
pub struct TemplatesArgs {
    #[command(subcommand)]
    pub command: TemplatesCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TemplatesCommand {
    /// List the templates built into spin-redis.
    List {
        /// Also show each template's parameters and their defaults.
        #[arg(long)]
        verbose: bool,
    },
}

/// `spin-redis templates ...`: returns the exit code.
pub fn templates(args: TemplatesArgs) -> Result<u8, Failure> {
    match args.command {
        TemplatesCommand::List { verbose } => print!("{}", list(verbose)),
    }
    Ok(0)
}

/// The `templates list` table.
fn list(verbose: bool) -> String {
    let width = TEMPLATES.iter().map(|t| t.id.len()).max().unwrap_or(0);
    let mut out = format!("{:width$}  Description\n", "Name");
    for t in TEMPLATES {
        out.push_str(&format!("{:width$}  {}\n", t.id, t.description));
        if verbose {
            for p in t.params {
                out.push_str(&format!(
                    "{:width$}    -v {}=...  ({}; default {:?})\n",
                    "", p.name, p.prompt, p.default
                ));
            }
        }
    }
    out.push_str("\nMake an app: spin-redis new -t <name> <app-name>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    /// Every file under `src/templates/<id>/` is embedded, and nothing else.
    #[test]
    fn every_template_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/templates");
        for t in TEMPLATES {
            let mut on_disk = Vec::new();
            walk(&root.join(t.id), "", &mut on_disk);
            on_disk.sort();
            let mut listed: Vec<String> = t.files.iter().map(|(p, _)| p.to_string()).collect();
            listed.sort();
            assert_eq!(on_disk, listed, "template {}", t.id);
        }
    }

    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }

    /// Every template renders with its defaults, and its manifest reads as
    /// a valid app with a build table (sources may be missing: not built).
    #[test]
    fn every_template_renders_into_a_valid_manifest() {
        for t in TEMPLATES {
            let mut values = BTreeMap::from([("project-name", "My App".to_string())]);
            for p in t.params {
                values.insert(p.name, p.default.to_string());
                (p.check)(p.default).unwrap();
            }
            let mut manifest = None;
            for (path, text) in t.files {
                let out = render::render(path, text, &values)
                    .unwrap_or_else(|e| panic!("template {}: {e}", t.id));
                assert!(!out.contains("{{"), "template {} file {path}", t.id);
                if *path == "spin.toml" {
                    manifest = Some(out);
                }
            }
            let manifest = manifest.unwrap_or_else(|| panic!("template {} has no spin.toml", t.id));
            let app = crate::manifest::parse_with(
                Path::new("/nowhere/spin.toml"),
                &manifest,
                &|_| None,
                crate::manifest::Sources::MayBeMissing,
            )
            .unwrap_or_else(|e| panic!("template {}: {e}", t.id));
            assert_eq!(app.components.len(), 1, "template {}", t.id);
            let c = &app.components[0];
            assert_eq!(c.id, "my-app", "template {}", t.id);
            let build = c
                .build
                .as_ref()
                .unwrap_or_else(|| panic!("template {} has no build", t.id));
            assert!(!build.watch.is_empty(), "template {}", t.id);
            assert_eq!(app.triggers[0].channel, "messages", "template {}", t.id);
        }
    }

    #[test]
    fn the_list_names_every_template() {
        let l = list(true);
        for t in TEMPLATES {
            assert!(l.contains(t.id), "{l}");
        }
        assert!(l.contains("-v redis-address=..."), "{l}");
    }
}
