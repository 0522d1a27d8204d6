//! Manifest v1 and v2: what they mean, and one table-driven test of every
//! kind of bad manifest, asserting on the message (file, line, field, hint).

use crate::support;
use spin_redis::manifest::{self, ExecutorConfig, ManifestErrorKind as K};
use std::path::Path;
use support::*;

/// A folder with `h.wasm` (an empty file: the manifest only checks that a
/// source exists) and the manifest text.
fn parse(text: &str, env: &[(&str, &str)]) -> Result<manifest::App, manifest::ManifestError> {
    let (dir, path) = support::manifest(text);
    std::fs::write(dir.path().join("h.wasm"), b"").unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone());
    manifest::parse(&path, &std::fs::read_to_string(&path).unwrap(), &lookup)
}

const V1: &str = r#"spin_manifest_version = "1"
name = "demo"
trigger = { type = "redis", address = "redis://localhost:6379" }

[[component]]
id = "shout"
source = "h.wasm"
environment = { GREETING = "hi" }
files = ["data/**", { source = "data", destination = "/data" }]
[component.trigger]
channel = "messages"
executor = { type = "wagi", argv = "${COMPONENT_ID} x" }

[[component]]
id = "plain"
source = "h.wasm"
[component.trigger]
channel = "messages"
"#;

#[test]
fn v1_means_what_design_md_says() {
    let app = parse(V1, &[]).unwrap();
    assert_eq!(app.name, "demo");
    assert_eq!(app.components.len(), 2);
    assert_eq!(
        app.components[0].environment,
        vec![("GREETING".to_string(), "hi".to_string())]
    );
    assert!(app.components[0].source.ends_with("h.wasm") && app.components[0].source.is_absolute());
    assert_eq!(app.components[0].files.len(), 2);
    assert_eq!(
        app.triggers[0].executor,
        ExecutorConfig::Wagi {
            entrypoint: "_start".into(),
            argv: vec!["${COMPONENT_ID}".into(), "x".into()]
        }
    );
    assert_eq!(
        app.triggers[1].executor,
        ExecutorConfig::Spin,
        "the default executor is the component executor"
    );
    assert_eq!(app.triggers[1].channel, "messages");
    assert_eq!(app.triggers[0].address.redacted(), "redis://localhost:6379");
}

const V2: &str = r#"spin_manifest_version = 2
[application]
name = "mixed"
[application.trigger.redis]
address = "redis://{{ host }}:6379"
timeout = "2s"
max_memory = "64MiB"

[variables]
host = { default = "localhost" }
room = { required = true }

[[trigger.redis]]
channel = "{{ room }}"
component = "shout"
executor = { type = "wagi", entrypoint = "run" }

[[trigger.redis]]
channel = "other"
component = "shout"
address = "redis://other:7000"
max_concurrency = 1

[[trigger.http]]
route = "/..."
component = "shout"

[component.shout]
source = "h.wasm"
allowed_outbound_hosts = []
"#;

#[test]
fn v2_means_the_same_with_variables_overrides_and_settings() {
    let app = parse(
        V2,
        &[
            ("SPIN_VARIABLE_ROOM", "lobby"),
            ("SPIN_VARIABLE_HOST", "redis.internal"),
        ],
    )
    .unwrap();
    assert_eq!(app.name, "mixed");
    assert_eq!(app.triggers.len(), 2, "http triggers are ignored");
    assert_eq!(app.triggers[0].channel, "lobby");
    assert_eq!(
        app.triggers[0].address.redacted(),
        "redis://redis.internal:6379"
    );
    assert_eq!(
        app.triggers[0].executor,
        ExecutorConfig::Wagi {
            entrypoint: "run".into(),
            argv: vec![]
        }
    );
    assert_eq!(app.triggers[1].address.redacted(), "redis://other:7000");
    assert_eq!(app.triggers[1].max_concurrency, Some(1));
    assert_eq!(
        app.settings.timeout,
        Some(std::time::Duration::from_secs(2))
    );
    assert_eq!(app.settings.max_memory, Some(64 << 20));
}

/// (what, manifest text, kind, fragments the message must contain)
const BAD: &[(&str, &str, K, &[&str])] = &[
    (
        "unknown field",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://h:1\" }\n[[component]]\nid = \"a\"\nsource = \"h.wasm\"\ncolour = \"red\"\n[component.trigger]\nchannel = \"c\"\n",
        K::UnknownField,
        &[
            "spin.toml:6:",
            "component[0]",
            "unknown field `colour`",
            "hint:",
        ],
    ),
    (
        "duplicate id",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://h:1\" }\n[[component]]\nid = \"a\"\nsource = \"h.wasm\"\n[component.trigger]\nchannel = \"c\"\n[[component]]\nid = \"a\"\nsource = \"h.wasm\"\n[component.trigger]\nchannel = \"d\"\n",
        K::DuplicateId,
        &[
            "spin.toml:9:",
            "component[1].id",
            "duplicate component id \"a\"",
            "first defined on line 4",
        ],
    ),
    (
        "missing source",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://h:1\" }\n[[component]]\nid = \"a\"\nsource = \"nope.wasm\"\n[component.trigger]\nchannel = \"c\"\n",
        K::MissingSource,
        &[
            "spin.toml:5:",
            "component[0].source",
            "\"nope.wasm\"",
            "does not exist",
            "relative to the manifest",
        ],
    ),
    (
        "empty channel",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://h:1\" }\n[[component]]\nid = \"a\"\nsource = \"h.wasm\"\n[component.trigger]\nchannel = \"  \"\n",
        K::EmptyChannel,
        &[
            "spin.toml:7:",
            "component[0].trigger.channel",
            "the channel is empty",
        ],
    ),
    (
        "bad address",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"http://h:1\" }\n[[component]]\nid = \"a\"\nsource = \"h.wasm\"\n[component.trigger]\nchannel = \"c\"\n",
        K::BadAddress,
        &[
            "spin.toml:2:",
            "trigger.address",
            "scheme \"http\"",
            "redis://",
        ],
    ),
    (
        "address password never shown",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://u:topsecret@h:1/notadb\" }\n[[component]]\nid = \"a\"\nsource = \"h.wasm\"\n[component.trigger]\nchannel = \"c\"\n",
        K::BadAddress,
        &["spin.toml:2:", "\"notadb\"", "redis://h:1/notadb"],
    ),
    (
        "unknown executor",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://h:1\" }\n[[component]]\nid = \"a\"\nsource = \"h.wasm\"\n[component.trigger]\nchannel = \"c\"\nexecutor = { type = \"wasi\" }\n",
        K::UnknownExecutor,
        &[
            "spin.toml:8:",
            "component[0].trigger.executor",
            "unknown variant `wasi`",
            "spin",
            "wagi",
        ],
    ),
    (
        "no version",
        "trigger = { type = \"redis\", address = \"redis://h:1\" }\n",
        K::Version,
        &["spin.toml:1:", "no version", "spin_manifest_version = 2"],
    ),
    (
        "unsupported trigger type",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"http\", base = \"/\" }\n",
        K::UnknownField,
        &["spin.toml:2:", "unknown field `base`"],
    ),
    (
        "invalid id",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://h:1\" }\n[[component]]\nid = \"../evil\"\nsource = \"h.wasm\"\n[component.trigger]\nchannel = \"c\"\n",
        K::InvalidId,
        &["spin.toml:4:", "\"../evil\"", "letters, digits"],
    ),
    (
        "toml syntax",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\"\n",
        K::Syntax,
        &["spin.toml:2:"],
    ),
    (
        "v2 component without a trigger",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[application.trigger.redis]\naddress = \"redis://h:1\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[component.a]\nsource = \"h.wasm\"\n[component.lonely]\nsource = \"h.wasm\"\n",
        K::NoTrigger,
        &["spin.toml:11:", "component.lonely", "has no trigger"],
    ),
    (
        "v2 trigger naming an unknown component",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[application.trigger.redis]\naddress = \"redis://h:1\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"ghost\"\n[component.a]\nsource = \"h.wasm\"\n",
        K::UnknownComponent,
        &[
            "spin.toml:8:",
            "trigger.redis[0].component",
            "\"ghost\"",
            "one of: a",
        ],
    ),
    (
        "v2 undeclared variable",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[application.trigger.redis]\naddress = \"redis://h:1\"\n[[trigger.redis]]\nchannel = \"{{ nope }}\"\ncomponent = \"a\"\n[component.a]\nsource = \"h.wasm\"\n",
        K::Variable,
        &[
            "spin.toml:7:",
            "trigger.redis[0].channel",
            "\"nope\" is not declared",
        ],
    ),
    (
        "v2 trigger without any address",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[component.a]\nsource = \"h.wasm\"\n",
        K::BadAddress,
        &["spin.toml:4:", "trigger.redis[0].address", "no address"],
    ),
    (
        "bad size setting",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[application.trigger.redis]\naddress = \"redis://h:1\"\nmax_memory = \"12 parsecs\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[component.a]\nsource = \"h.wasm\"\n",
        K::BadValue,
        &["spin.toml:6:", "max_memory", "unknown size unit"],
    ),
    (
        "unclosed template in an address with a password",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[application.trigger.redis]\naddress = \"redis://u:topsecret@host:{{ port\"\n[variables]\nport = { default = \"1\" }\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[component.a]\nsource = \"h.wasm\"\n",
        K::Variable,
        &[
            "spin.toml:5:",
            "application.trigger.redis.address",
            "unclosed template",
        ],
    ),
    (
        "per-trigger max_concurrency out of range (v2)",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[application.trigger.redis]\naddress = \"redis://h:1\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\nmax_concurrency = 3000000000000000000\n[component.a]\nsource = \"h.wasm\"\n",
        K::BadValue,
        &[
            "spin.toml:9:",
            "trigger.redis[0].max_concurrency",
            "out of range",
            "from 1 to 1024",
        ],
    ),
    (
        "per-trigger max_concurrency zero (v1)",
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://h:1\" }\n[[component]]\nid = \"a\"\nsource = \"h.wasm\"\n[component.trigger]\nchannel = \"c\"\nmax_concurrency = 0\n",
        K::BadValue,
        &[
            "spin.toml:8:",
            "component[0].trigger.max_concurrency",
            "from 1 to 1024",
        ],
    ),
    (
        "app timeout of zero",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[application.trigger.redis]\naddress = \"redis://h:1\"\ntimeout = \"0s\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[component.a]\nsource = \"h.wasm\"\n",
        K::BadValue,
        &["spin.toml:6:", "timeout", "out of range", "1ms to 1day"],
    ),
    (
        "app max_memory past 4GiB",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[application.trigger.redis]\naddress = \"redis://h:1\"\nmax_memory = \"8GiB\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[component.a]\nsource = \"h.wasm\"\n",
        K::BadValue,
        &["spin.toml:6:", "max_memory", "8GiB", "64KiB to 4GiB"],
    ),
    (
        "exclude pattern leaving the folder",
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[application.trigger.redis]\naddress = \"redis://h:1\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[component.a]\nsource = \"h.wasm\"\nexclude_files = [\"../x\"]\n",
        K::Files,
        &[
            "spin.toml:11:",
            "component.a.exclude_files",
            "leaves the manifest's folder",
        ],
    ),
];

#[test]
fn every_kind_of_bad_manifest_gets_a_located_message() {
    for (what, text, kind, fragments) in BAD {
        let err = match parse(text, &[]) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e,
        };
        assert_eq!(err.kind, *kind, "{what}: {err}");
        let msg = err.to_string();
        for f in *fragments {
            assert!(msg.contains(f), "{what}: {f:?} missing from:\n{msg}");
        }
        assert!(
            !msg.contains("topsecret"),
            "{what}: leaked the password: {msg}"
        );
    }
}

#[test]
fn the_cli_exits_2_with_the_message_for_a_bad_manifest() {
    let (_d, m) = support::manifest(BAD[2].1);
    let (code, out, err) = run(&["up", "-f", m.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("error: ") && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(
        err.matches("does not exist").count(),
        1,
        "the chain is printed once: {err}"
    );
    // A folder holding spin.toml works as -f too.
    let (code, _, err) = run(&["up", "-f", m.parent().unwrap().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, err) = run(&["up", "-f", "/no/such/spin.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read the manifest"), "{err}");
}

#[test]
fn the_cli_exits_2_on_bad_flags() {
    let (code, _, err) = run(&["up", "--timeout", "soon"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a duration"), "{err}");
    for (flag, value) in [
        ("--max-concurrency", "18446744073709551615"),
        ("--queue-capacity", "18446744073709551615"),
        ("--max-concurrency", "0"),
        ("--max-memory", "5GiB"),
    ] {
        let (code, _, err) = run(&["up", flag, value]);
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(err.contains(flag) && err.contains("out of range"), "{err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
    let (code, _, err) = run(&["up", "-e", "NOEQUALS"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("KEY=VALUE"), "{err}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("spin-redis "), "{out}");
    let _ = Path::new("");
}
