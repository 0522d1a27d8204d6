//! A component's `files` as Spin mounts them: globs, plain files, plain
//! folders, `{ source, destination }`, and `exclude_files`. Checked through
//! `invoke` with `readfile.wat`, which prints the file named by the payload
//! (relative to its first mount) or exits with the WASI errno (44: noent).

use crate::support;
use support::*;

/// An app folder with a tree of files and one compat component `reader`
/// whose `files` and `exclude_files` lines are `files`.
fn app(files: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, m) = manifest("");
    let root = dir.path();
    for (path, text) in [
        ("assets/a.txt", "asset a\n"),
        ("assets/sub/b.txt", "asset b\n"),
        ("assets/private/p.txt", "private\n"),
        ("docs/guide.txt", "the guide\n"),
        ("docs/deep/more.txt", "more guide\n"),
        ("single.txt", "a single file\n"),
        ("data/d.txt", "mapped\n"),
        ("data/secret.key", "key\n"),
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::write(
        &m,
        format!(
            r#"spin_manifest_version = "1"
name = "files"
trigger = {{ type = "redis", address = "redis://127.0.0.1:1" }}
[[component]]
id = "reader"
source = "{}"
{files}
[component.trigger]
channel = "c"
executor = {{ type = "wagi" }}
"#,
            fixture("readfile.wat").display()
        ),
    )
    .unwrap();
    (dir, m)
}

/// Invokes the reader on `path`: `Ok(contents)` or `Err(stderr)`.
fn read(m: &std::path::Path, path: &str) -> Result<String, String> {
    let (code, out, err) = invoke_with(m, "reader", &["--payload", path]);
    if code == 0 { Ok(out) } else { Err(err) }
}

#[test]
fn globs_plain_files_and_plain_folders_mount_as_in_spin_and_exclusions_hold() {
    let (_d, m) = app(r#"files = ["assets/**/*", "docs", "single.txt"]
exclude_files = ["assets/private/**/*"]"#);
    assert_eq!(read(&m, "assets/a.txt").unwrap(), "asset a\n");
    assert_eq!(read(&m, "assets/sub/b.txt").unwrap(), "asset b\n");
    // A plain folder is mounted whole, at its own path.
    assert_eq!(read(&m, "docs/guide.txt").unwrap(), "the guide\n");
    assert_eq!(read(&m, "docs/deep/more.txt").unwrap(), "more guide\n");
    assert_eq!(read(&m, "single.txt").unwrap(), "a single file\n");
    // Excluded, and never listed: not there at all.
    let err = read(&m, "assets/private/p.txt").unwrap_err();
    assert!(err.contains("exited with code 44"), "{err}");
    // Nothing else of the app folder is visible.
    let err = read(&m, "data/d.txt").unwrap_err();
    assert!(err.contains("exited with code 44"), "{err}");
}

#[test]
fn a_bare_double_star_matches_folders_only_and_says_so() {
    let (_d, m) = app(r#"files = ["assets/**"]"#);
    let (code, _, err) = invoke_with(&m, "reader", &["--payload", "assets/a.txt"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exited with code 44"), "{err}");
    assert!(
        err.contains("mounts no files") && err.contains("**/*"),
        "the warning must say how to write it: {err}"
    );
}

#[test]
fn exclusions_apply_inside_mapped_folders_too() {
    let (_d, m) = app(r#"files = [{ source = "data", destination = "/data" }]
exclude_files = ["data/*.key"]"#);
    assert_eq!(read(&m, "d.txt").unwrap(), "mapped\n");
    let err = read(&m, "secret.key").unwrap_err();
    assert!(err.contains("exited with code 44"), "{err}");
}

/// File calls run on a handler thread, so a mounted folder must not hold
/// anything a read could wait on without end: a named pipe in it is refused
/// at start-up, naming it, unless `exclude_files` leaves it out.
#[test]
fn a_named_pipe_in_a_mounted_folder_is_refused_unless_excluded() {
    let mkfifo = |dir: &std::path::Path| {
        let made = std::process::Command::new("mkfifo")
            .arg(dir.join("data/pipe"))
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
    };
    let (d, m) = app(r#"files = [{ source = "data", destination = "/data" }]"#);
    mkfifo(d.path());
    let err = read(&m, "d.txt").unwrap_err();
    assert!(
        err.contains("data/pipe")
            && err.contains("not a plain file")
            && err.contains("exclude_files"),
        "{err}"
    );
    assert!(
        !err.contains("exited with code"),
        "refused before running: {err}"
    );

    let (d, m) = app(r#"files = [{ source = "data", destination = "/data" }]
exclude_files = ["data/pipe"]"#);
    mkfifo(d.path());
    assert_eq!(read(&m, "d.txt").unwrap(), "mapped\n");
    let err = read(&m, "pipe").unwrap_err();
    assert!(err.contains("exited with code 44"), "{err}");
}
