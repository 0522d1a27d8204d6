//! `spin-redis build`, and the build step of `up --build` and
//! `invoke --build`: run each component's `build` commands (see
//! `manifest::build`) as Spin does, through `sh -c` in the component's
//! workdir, one after the other, with the process's own environment.
//!
//! Every line a command prints is echoed with a `[<component id>]` prefix
//! (stdout to stdout, stderr to stderr; for `invoke`, both to stderr so that
//! its stdout stays the handler's). The first command that fails stops the
//! build: exit 1 naming the component and the command. A component without
//! a build table is skipped with a line saying so.
//!
//! Not owned here: reading the build table (the manifest), watching files.

use crate::failure::Failure;
use crate::manifest::{self, App, BuildConfig};
use anyhow::{Context as _, anyhow};
use std::io::{BufRead as _, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `-f/--from`, the manifest a command reads: declared once here and
/// flattened into `build`'s flags and into `up`, `invoke` and `check`'s
/// (`cli::Common`). Derefs to the path.
#[derive(Debug, Clone, clap::Args)]
pub struct ManifestFrom {
    /// The manifest: a spin.toml file, or a folder holding one.
    #[arg(
        short = 'f',
        long = "from",
        value_name = "PATH",
        default_value = "spin.toml"
    )]
    pub path: PathBuf,
}

impl std::ops::Deref for ManifestFrom {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

/// `spin-redis build`'s flags.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub from: ManifestFrom,

    /// Build only this component (repeatable) [default: every component].
    #[arg(short = 'c', long = "component-id", value_name = "ID")]
    pub component_id: Vec<String>,
}

/// Where a build command's stdout goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// stdout to stdout, stderr to stderr.
    AsIs,
    /// Both to stderr (`invoke`, whose stdout is the handler's output).
    Stderr,
}

/// `spin-redis build`: returns the exit code.
pub fn build(args: BuildArgs) -> Result<u8, Failure> {
    build_manifest(&args.from, &args.component_id, Echo::AsIs)?;
    Ok(0)
}

/// Reads the manifest at `from` (its sources need not exist yet) and builds
/// its components (only those in `only`, when not empty).
pub fn build_manifest(from: &Path, only: &[String], echo: Echo) -> Result<(), Failure> {
    let app = manifest::load_for_build(from).map_err(Failure::usage)?;
    build_app(&app, only, echo)
}

/// Builds `app`'s components (only those in `only`, when not empty), in
/// the App's order (v1: file order; v2: by id).
pub fn build_app(app: &App, only: &[String], echo: Echo) -> Result<(), Failure> {
    for id in only {
        if !app.components.iter().any(|c| &c.id == id) {
            let known: Vec<&str> = app.components.iter().map(|c| c.id.as_str()).collect();
            return Err(Failure::usage(anyhow!(
                "no component {id:?} in {:?}; the components are: {}",
                app.manifest.display().to_string(),
                known.join(", ")
            )));
        }
    }
    let mut built = 0;
    for c in &app.components {
        if !only.is_empty() && !only.contains(&c.id) {
            continue;
        }
        let Some(build) = &c.build else {
            say(
                echo,
                &format!("{}: no build command in the manifest, skipped", c.id),
            );
            continue;
        };
        build_component(&c.id, build, echo)?;
        built += 1;
    }
    say(
        echo,
        &format!(
            "Finished building {built} component{}",
            if built == 1 { "" } else { "s" }
        ),
    );
    Ok(())
}

/// Runs one component's commands in order; the first failure stops it.
fn build_component(id: &str, build: &BuildConfig, echo: Echo) -> Result<(), Failure> {
    if !build.dir.is_dir() {
        return Err(Failure::runtime(anyhow!(
            "cannot build component {id:?}: its workdir {:?} is not a folder (looked for {:?})",
            build.workdir.as_deref().unwrap_or("."),
            build.dir.display().to_string()
        )));
    }
    for command in &build.commands {
        let place = build
            .workdir
            .as_deref()
            .map(|w| format!(" in {w:?}"))
            .unwrap_or_default();
        say(
            echo,
            &format!("Building component {id:?} with `{command}`{place}"),
        );
        run(id, command, &build.dir, echo).map_err(Failure::runtime)?;
    }
    Ok(())
}

/// Runs `sh -c command` in `dir`, echoing its output with the component's
/// prefix; an error names the component and the command.
fn run(id: &str, command: &str, dir: &Path, echo: Echo) -> anyhow::Result<()> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("cannot start build command `{command}` of component {id:?} with sh")
        })?;
    let prefix = format!("[{id}] ");
    let out = child.stdout.take().expect("invariant: stdout was piped");
    let err = child.stderr.take().expect("invariant: stderr was piped");
    // One thread per pipe, so that a command filling one pipe while we wait
    // on the other can never stall.
    let out_thread = {
        let prefix = prefix.clone();
        std::thread::spawn(move || match echo {
            Echo::AsIs => pump(out, &prefix, &mut std::io::stdout()),
            Echo::Stderr => pump(out, &prefix, &mut std::io::stderr()),
        })
    };
    pump(err, &prefix, &mut std::io::stderr());
    // A panic in the pump thread would be a bug in `pump`; the build's own
    // result does not depend on the echo, so it is not made an error.
    let _ = out_thread.join();
    let status = child.wait().with_context(|| {
        format!("cannot wait for build command `{command}` of component {id:?}")
    })?;
    if status.success() {
        return Ok(());
    }
    let how = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "a signal".to_string(),
    };
    Err(anyhow!(
        "build command `{command}` of component {id:?} failed with {how}"
    ))
}

/// Copies `from` line by line to `to`, each line after `prefix`. A line is
/// written whole with one call, so lines of two pipes never interleave
/// within a line. Write errors (a closed terminal) are ignored: the command
/// keeps running and its result decides.
fn pump(from: impl Read, prefix: &str, to: &mut dyn Write) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        let mut whole = Vec::with_capacity(prefix.len() + line.len());
        whole.extend_from_slice(prefix.as_bytes());
        whole.extend_from_slice(&line);
        let _ = to.write_all(&whole);
        let _ = to.flush();
    }
}

/// One line of the build's own progress.
fn say(echo: Echo, line: &str) {
    match echo {
        Echo::AsIs => println!("{line}"),
        Echo::Stderr => eprintln!("{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pump_prefixes_every_line_and_ends_the_last_one() {
        let mut out = Vec::new();
        pump(&b"one\ntwo\n\nthree"[..], "[x] ", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[x] one\n[x] two\n[x] \n[x] three\n"
        );
    }

    #[test]
    fn non_utf8_output_is_passed_through() {
        let mut out = Vec::new();
        pump(&b"\xff\xfe\n"[..], "[x] ", &mut out);
        assert_eq!(out, b"[x] \xff\xfe\n");
    }
}
