//! rust-env-component: a component handler for spin-redis's tests,
//! exporting the seed world `redis-handler` (`wit/spin-redis.wit` at the root
//! of the repository). It prints its environment, one `KEY=VALUE` a line,
//! sorted, then the payload's length, and succeeds: what the component
//! executor hands a handler, as the compat executor's `env.wat` shows it.

wit_bindgen::generate!({
    path: "../../../wit/spin-redis.wit",
    world: "redis-handler",
});

use std::io::Write as _;

struct Handler;

impl Guest for Handler {
    fn handle_redis_message(message: Payload) -> Result<(), Error> {
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        vars.sort();
        let mut text = String::new();
        for (k, v) in vars {
            text.push_str(&format!("{k}={v}\n"));
        }
        text.push_str(&format!("payload bytes: {}\n", message.len()));
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        Ok(())
    }
}

export!(Handler);
