//! The compiled-code cache: a warm cache is used, and a corrupt entry is
//! recompiled, never trusted.

mod support;
use support::*;

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn corrupt_cache_entries_are_recompiled_not_trusted() {
    let cache = tempfile::tempdir().unwrap();
    let (_d, m) = manifest(&format!(
        "spin_manifest_version = \"1\"\ntrigger = {{ type = \"redis\", address = \"redis://127.0.0.1:1\" }}\n[[component]]\nid = \"echo\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"c\"\nexecutor = {{ type = \"wagi\" }}\n",
        fixture("echo.wat").display()
    ));
    let dir = cache.path().to_str().unwrap();
    let invoke = || {
        run(&[
            "invoke",
            "-f",
            m.to_str().unwrap(),
            "echo",
            "--payload",
            "cached",
            "--cache-dir",
            dir,
        ])
    };
    let (code, out, err) = invoke();
    assert_eq!((code, out.as_str()), (0, "cached\n"), "{err}");
    // wasmtime writes cache entries in the background; wait for one.
    let mut entries = Vec::new();
    wait_until("a cache entry", || {
        entries.clear();
        files(cache.path(), &mut entries);
        !entries.is_empty()
    });
    for e in &entries {
        std::fs::write(e, b"definitely not compiled code").unwrap();
    }
    let (code, out, err) = invoke();
    assert_eq!(
        (code, out.as_str()),
        (0, "cached\n"),
        "a corrupt entry must be recompiled: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
