//! Fuzzes the manifest parser: any text must give an `App` or a
//! `ManifestError`, never a panic, and an error's message must never contain
//! a password from an address.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

#[allow(dead_code)]
#[path = "../../src/address.rs"]
mod address;
#[allow(dead_code, unused_imports)]
#[path = "../../src/manifest/mod.rs"]
mod manifest;
// The settings the manifest reads (defaults, ranges, `AppSettings`); the
// rest of `settings` needs the sandbox crate, which the fuzz build leaves
// out (it never touches wasmtime).
#[allow(dead_code)]
#[path = "../../src/settings/app.rs"]
mod settings_app;
#[allow(dead_code)]
#[path = "../../src/settings/defaults.rs"]
mod settings_defaults;
#[allow(dead_code)]
#[path = "../../src/settings/ranges.rs"]
pub mod settings_ranges;
mod settings {
    pub use super::settings_app::AppSettings;
    pub use super::settings_defaults::*;
    pub use super::settings_ranges as ranges;
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "SPIN_VARIABLE_PORT").then(|| "6379".to_string());
    match manifest::parse(Path::new("/nonexistent/spin.toml"), text, &env) {
        Ok(app) => {
            for t in &app.triggers {
                assert!(!t.channel.trim().is_empty());
                if text.contains(":fuzzpw@") && !text.contains("fuzzpw.") {
                    assert!(!t.address.redacted().contains("fuzzpw"), "password shown: {}", t.address);
                }
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.is_empty());
            // Address errors must never show a password (the seeds
            // `password*.toml` use `fuzzpw`, plain and inside `{{ }}`
            // templates); other fields may echo any text. A password is
            // the user info before `@`: text that only looks like one
            // (`u:fuzzpwP{{` with no `@`, seed `not-a-credential-echoed`)
            // is no credential, and an error may quote it.
            let about_address = e.field.as_deref().is_some_and(|f| f.contains("address"));
            if about_address && text.contains(":fuzzpw@") {
                assert!(!shown.contains("fuzzpw@"), "password leaked: {shown}");
            }
        }
    }
});
