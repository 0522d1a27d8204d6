//! spin-redis test guest: reads the component's variables through
//! `wasi:config/store@0.2.0-draft-2024-09-27` and prints what it got.
//!
//! Payload `get:<name>` prints `<name> = <value>` or `<name> is none`;
//! `all` prints every `name = value`, sorted. Anything else, or an error
//! from the store, fails the message.

wit_bindgen::generate!({
    // The dependency first: a path is resolved against those before it.
    path: ["../../../wit/spin/wasi-config@0.2.0-draft-2024-09-27", "wit"],
    world: "spin-redis-test:wasi-config/guest",
    generate_all,
});

use wasi::config::store;

struct Handler;

impl Guest for Handler {
    fn handle_redis_message(message: Payload) -> Result<(), Error> {
        let text = String::from_utf8_lossy(&message);
        let fail = |what: String| {
            eprintln!("{what}");
            Err(Error::Error)
        };
        if let Some(name) = text.strip_prefix("get:") {
            match store::get(name) {
                Ok(Some(value)) => println!("{name} = {value}"),
                Ok(None) => println!("{name} is none"),
                Err(e) => return fail(format!("get {name:?} failed: {e:?}")),
            }
        } else if text == "all" {
            match store::get_all() {
                Ok(mut all) => {
                    all.sort();
                    for (k, v) in all {
                        println!("{k} = {v}");
                    }
                }
                Err(e) => return fail(format!("get-all failed: {e:?}")),
            }
        } else {
            return fail(format!("unknown request {text:?}"));
        }
        Ok(())
    }
}

export!(Handler);
