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
/// The manifest checks `allowed_outbound_hosts` with the host's own parser,
/// which is plain std code; it is `crate::host::allowed_hosts` there.
#[allow(dead_code)]
#[path = "../../src/host/allowed_hosts.rs"]
pub mod allowed_hosts;
mod host {
    pub use super::allowed_hosts;
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
            // templates); other fields may echo any text.
            let about_address = e.field.as_deref().is_some_and(|f| f.contains("address"));
            if about_address && text.contains(":fuzzpw@") {
                assert!(!shown.contains("fuzzpw"), "password leaked: {shown}");
            }
        }
    }
});
