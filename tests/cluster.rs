//! Redis Cluster against a real 3-node cluster on loopback: channels through
//! `SUBSCRIBE` (cluster-wide) and `SSUBSCRIBE` (`sharded = true`), a stream
//! whose slot is on a node other than the one in `address`, a slot moved
//! while it is read (`MOVED` followed), and nodes restarted; a component's
//! outbound Redis, which never follows the cluster.

use crate::support;
use support::*;

fn echo() -> String {
    fixture("echo.wat").display().to_string()
}

fn numsub(node: &ClusterNode, kind: &str, channel: &str) -> i64 {
    node.cli(&["PUBSUB", kind, channel])
        .and_then(|o| o.lines().nth(1).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

/// Waits until `s` (still running) has subscribed to `channel` on some node.
fn wait_subscribed(cluster: &Cluster, s: &SpinRedis, channel: &str) {
    wait_until(
        &format!("subscribed to {channel} somewhere in the cluster"),
        || {
            assert!(s.is_running(), "{}", s.stderr());
            cluster
                .nodes
                .iter()
                .map(|n| numsub(n, "NUMSUB", channel))
                .sum::<i64>()
                >= 1
        },
    );
}

#[test]
fn channels_are_subscribed_cluster_wide_and_sharded() {
    let mut cluster = Cluster::start();
    // A sharded channel on node 1, while the manifest names node 0 only.
    let sharded = cluster.key_on(1, "alerts");
    let text = [
        v2_head("app", &cluster.nodes[0].url()),
        "cluster = true\n".into(),
        wagi_trigger("channel", "news", "plain"),
        wagi_trigger("channel", &sharded, "shard"),
        "sharded = true\n".into(),
        v2_component("plain", echo()),
        v2_component("shard", echo()),
    ]
    .concat();
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::spawn(&m, &[]);
    wait_subscribed(&cluster, &s, "news");
    wait_until("sharded subscription on the slot's node", || {
        numsub(&cluster.nodes[1], "SHARDNUMSUB", &sharded) >= 1
    });
    // Published on a node the subscriber may not be connected to.
    for n in &cluster.nodes {
        n.cli(&["PUBLISH", "news", &format!("via {}", n.port)])
            .unwrap();
    }
    cluster.nodes[1]
        .cli(&["SPUBLISH", &sharded, "sharded hello"])
        .unwrap();
    for n in &cluster.nodes {
        s.wait_log("plain_stdout.txt", &format!("via {}\n", n.port));
    }
    s.wait_log("shard_stdout.txt", "sharded hello\n");

    // The sharded channel's node comes back after a restart.
    cluster.nodes[1].restart();
    cluster.wait_ok();
    s.wait_stderr("reconnected to the redis cluster and resubscribed");
    wait_until("sharded subscription again", || {
        numsub(&cluster.nodes[1], "SHARDNUMSUB", &sharded) >= 1
    });
    cluster.nodes[1]
        .cli(&["SPUBLISH", &sharded, "after the restart"])
        .unwrap();
    s.wait_log("shard_stdout.txt", "after the restart\n");
    assert!(s.stop().success());
    assert_eq!(
        s.log_text("shard_stdout.txt"),
        "sharded hello\nafter the restart\n"
    );
}

/// `spin-redis up -q` on a [`source_manifest`] of `kind` on `key` that
/// names node 0 only, once it reads its source.
fn reading_on_node_0(
    cluster: &Cluster,
    kind: &str,
    key: &str,
    trigger: &str,
    app: &str,
) -> (tempfile::TempDir, SpinRedis) {
    let (d, m) = manifest(&source_manifest(
        kind,
        &cluster.nodes[0].url(),
        key,
        trigger,
        app,
    ));
    (d, SpinRedis::reading(&m, &["-q"], kind))
}

#[test]
fn a_stream_on_another_nodes_slot_is_read_through_moves_and_restarts() {
    let mut cluster = Cluster::start();
    let key = cluster.key_on(1, "orders");
    let slot = cluster.slot(&key);
    let (_d, mut s) = reading_on_node_0(
        &cluster,
        "stream",
        &key,
        "cluster = true\nclaim_idle = \"3s\"",
        "timeout = \"1s\"",
    );
    let mut con = cluster.connection();
    let mut add = |payload: &str| -> String {
        redis::cmd("XADD")
            .arg(&key)
            .arg("*")
            .arg("payload")
            .arg(payload)
            .query(&mut con)
            .unwrap()
    };
    let a = add("one");
    s.wait_log("h_stdout.txt", &format!("{a} 1 one\n"));

    // The slot moves to node 2 while it is being read: redirected.
    cluster.move_slot(slot, 2);
    let b = add("two");
    s.wait_log("h_stdout.txt", &format!("{b} 1 two\n"));
    let pending = |node: &ClusterNode| {
        node.cli(&["XPENDING", &key, "app.h"])
            .map(|o| o.lines().next().unwrap_or("").trim().to_string())
    };
    wait_until("acknowledged on the new node", || {
        pending(&cluster.nodes[2]).as_deref() == Some("0")
    });
    // The read waiting on the old node was unblocked by the move, and read
    // again where the slot went: not a lost connection, not a refusal.
    assert!(
        !s.stderr().contains("lost the connection") && !s.stderr().contains("refused"),
        "a moved slot is read again at once:\n{}",
        s.stderr()
    );

    // The node comes back empty after a restart: the group is made again.
    cluster.nodes[2].restart();
    cluster.wait_ok();
    let mut con = cluster.connection();
    let c: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("payload")
        .arg("three")
        .query(&mut con)
        .unwrap();
    s.wait_log("h_stdout.txt", &format!("{c} 1 three\n"));
    wait_until("acknowledged after the restart", || {
        pending(&cluster.nodes[2]).as_deref() == Some("0")
    });
    assert!(s.stop().success());
    let log = s.log_text("h_stdout.txt");
    assert_eq!(log.lines().count(), 3, "each once:\n{log}");
}

#[test]
fn outbound_redis_from_a_component_stays_on_the_node_its_address_names() {
    // Issue 17: a server that says it is a cluster node must not steer a
    // guest to other hosts. A component's outbound Redis is a plain
    // connection to the node it names; a key elsewhere is a MOVED error.
    let wasm = example("spin-sdk7-rust");
    let cluster = Cluster::start();
    // The component INCRs "words:messages": name a node that does not hold
    // it, so only a cluster connection (which it must not get) reaches it.
    let owner = cluster.owner(cluster.slot("words:messages"));
    let other = (owner + 1) % 3;
    let node = cluster.nodes[other].url();
    let text = [
        v2_head("app", &node),
        "cluster = true\n".into(),
        v2_trigger("channel", "messages", "words"),
        v2_component("words", wasm.display()),
        format!(
            "allowed_outbound_hosts = [\"redis://127.0.0.1:*\"]\nkey_value_stores = [\"default\"]\n[component.words.variables]\nredis_address = \"{node}\"\nresults_channel = \"results\"\n"
        ),
    ]
    .concat();
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::spawn(&m, &[]);
    wait_subscribed(&cluster, &s, "messages");
    cluster.nodes[owner]
        .cli(&["PUBLISH", "messages", "hello cluster"])
        .unwrap();
    s.wait_stderr("handler failed component=words channel=messages");
    s.wait_log("words_stderr.txt", "does not follow cluster redirects");
    let value = cluster.nodes[owner]
        .cli(&["GET", "words:messages"])
        .unwrap();
    assert_eq!(value.trim(), "", "the INCR never reached the key's node");
    assert!(s.stop().success());
    s.assert_not_logged(
        "the address is a cluster node",
        "the outbound connection is a plain one",
    );
}

/// `PUBSUB NUMPAT` of one node.
fn numpat(node: &ClusterNode) -> i64 {
    node.cli(&["PUBSUB", "NUMPAT"])
        .and_then(|o| o.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_pattern_is_subscribed_cluster_wide_and_again_after_its_node_restarts() {
    let mut cluster = Cluster::start();
    let text = [
        v2_head("app", &cluster.nodes[0].url()),
        "cluster = true\n".into(),
        wagi_trigger("pattern", "news.*", "h"),
        v2_component("h", echo()),
    ]
    .concat();
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::spawn(&m, &[]);
    let subscribed_on = |cluster: &Cluster| cluster.nodes.iter().position(|n| numpat(n) >= 1);
    wait_until("the pattern subscribed somewhere in the cluster", || {
        assert!(s.is_running(), "{}", s.stderr());
        subscribed_on(&cluster).is_some()
    });
    // Published on every node, whichever one holds the subscription.
    for n in &cluster.nodes {
        n.cli(&["PUBLISH", &format!("news.{}", n.port), "hello"])
            .unwrap();
    }
    let log = || s.log_text("h_stdout.txt");
    wait_until("one message from each node", || log().lines().count() >= 3);

    // The node holding the subscription restarts: subscribed again.
    let node = subscribed_on(&cluster).expect("subscribed");
    cluster.nodes[node].restart();
    cluster.wait_ok();
    s.wait_stderr("reconnected to the redis cluster and resubscribed");
    wait_until("the pattern subscribed again", || {
        subscribed_on(&cluster).is_some()
    });
    cluster.nodes[(node + 1) % 3]
        .cli(&["PUBLISH", "news.after", "again"])
        .unwrap();
    s.wait_log("h_stdout.txt", "again\n");
    assert!(s.stop().success());
    assert_eq!(s.log_text("h_stdout.txt"), "hello\nhello\nhello\nagain\n");
}

#[test]
fn a_list_on_another_nodes_slot_is_consumed_with_its_processing_list_beside_it() {
    let cluster = Cluster::start();
    // "jobs{tN}": its hash tag puts it, and every key kept beside it, on
    // node 1, while the manifest names node 0 only.
    let list = cluster.key_on(1, "jobs");
    let (_d, mut s) = reading_on_node_0(
        &cluster,
        "list",
        &list,
        "consumer = \"w1\"\nmax_deliveries = 2",
        "cluster = true",
    );
    let mut con = cluster.connection();
    let _: i64 = redis::cmd("LPUSH")
        .arg(&list)
        .arg(&["one", "flaky", "poison"])
        .query(&mut con)
        .unwrap();
    let dead = format!("{list}:dead");
    let processing = format!("{list}:processing:w1");
    let llen = |con: &mut redis::cluster::ClusterConnection, key: &str| -> i64 {
        redis::cmd("LLEN").arg(key).query(con).unwrap()
    };
    wait_until("handled, retried and dead-lettered", || {
        llen(&mut con, &dead) == 1 && llen(&mut con, &list) == 0 && llen(&mut con, &processing) == 0
    });
    // Everything lives on the list's node.
    let node1 = &cluster.nodes[1];
    let keys = node1.cli(&["KEYS", "*"]).unwrap();
    assert!(keys.contains(&format!("{list}:consumers")), "{keys}");
    assert!(s.stop().success());
    let log = s.log_text("h_stdout.txt");
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "- 1 flaky",
            "- 1 one",
            "- 1 poison",
            "- 2 flaky",
            "- 2 poison"
        ],
        "{log}"
    );
    assert!(
        s.stderr().contains(&format!("spin-redis: list {list:?} (component h, consumer \"w1\"): handled 2, retried 2, dead-lettered 1")),
        "{}",
        s.stderr()
    );
}
