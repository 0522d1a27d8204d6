//! Certificates for the TLS tests, made with `openssl` in a test's folder,
//! and a TLS-only redis-server serving them.

use super::{Redis, free_port};
use std::path::Path;
use std::process::Command;

/// Makes a CA and a server certificate for 127.0.0.1 in `dir`.
pub fn certificates(dir: &Path, ca_name: &str) {
    let sh = |args: &str| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    sh(&format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout {ca_name}.key -out {ca_name}.crt -days 2 -subj /CN={ca_name}"
    ));
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    sh(&format!(
        "openssl x509 -req -in server.csr -CA {ca_name}.crt -CAkey {ca_name}.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf"
    ));
}

impl Redis {
    /// A TLS-only redis-server on a free port, serving the certificate that
    /// [`certificates`] made in `certs` with CA name "ca"; clients are not
    /// asked for certificates. Its URL is `rediss://127.0.0.1:<port>`.
    pub fn start_tls(certs: &Path) -> Redis {
        let p = |f: &str| certs.join(f).display().to_string();
        let port = free_port();
        let port_s = port.to_string();
        let (cert, key, ca) = (p("server.crt"), p("server.key"), p("ca.crt"));
        Redis::start_on(
            port,
            &[
                "--port",
                "0",
                "--tls-port",
                &port_s,
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca,
                "--tls-auth-clients",
                "no",
            ],
        )
    }
}

/// A TLS-only redis-server with certificates of its own: the folder holding
/// them (keep it while the server runs), the server, the CA file that
/// verifies it and its `rediss://` URL.
pub fn tls_redis() -> (tempfile::TempDir, Redis, String, String) {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path(), "ca");
    let ca = certs.path().join("ca.crt").display().to_string();
    let redis = Redis::start_tls(certs.path());
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    (certs, redis, ca, url)
}
