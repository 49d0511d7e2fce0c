//! `GET /openapi.json`: the admin API as an OpenAPI 3.0 document, built from one table of routes. Each operation
//! carries `x-example`, a request that is safe to send to a running node, and `x-cli`, the command that does the
//! same; a test sends every example to a live node and checks the answer is one the document lists.

use serde_json::{Map, Value, json};

struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    cli: &'static str,
    authenticated: bool,
    /// Documented answers: status and what it means.
    responses: &'static [(u16, &'static str)],
    /// A safe request: the path to use and the JSON body, if any.
    example: (&'static str, Option<&'static str>),
}

const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/health",
        summary: "Liveness for load balancers and supervisors; no token, nothing secret",
        cli: "curl http://<admin>/health",
        authenticated: false,
        responses: &[(200, "running: {\"status\": \"ok\"}"), (503, "stopping")],
        example: ("/health", None),
    },
    Op {
        method: "get",
        path: "/openapi.json",
        summary: "This document; no token",
        cli: "curl http://<admin>/openapi.json",
        authenticated: false,
        responses: &[(200, "the document")],
        example: ("/openapi.json", None),
    },
    Op {
        method: "get",
        path: "/status",
        summary: "Our ID, profile, network, listen address, ILP address, version and the NodeInfo we advertise",
        cli: "ledgerwire status",
        authenticated: true,
        responses: &[(200, "the status"), (401, "missing or wrong token")],
        example: ("/status", None),
    },
    Op {
        method: "get",
        path: "/peers",
        summary: "Connected peers: ID, moniker, address, direction, persistent, private, since, bytes, RTT",
        cli: "ledgerwire peers",
        authenticated: true,
        responses: &[(200, "the peers"), (401, "missing or wrong token")],
        example: ("/peers", None),
    },
    Op {
        method: "post",
        path: "/peers",
        summary: "Queues a dial: {\"address\": \"id@host:port\", \"persistent\": false}",
        cli: "ledgerwire dial <id@host:port> [--persistent]",
        authenticated: true,
        responses: &[(202, "queued"), (400, "not a dialable address"), (503, "the dial queue is full")],
        example: ("/peers", Some(r#"{"address": "not-an-address"}"#)),
    },
    Op {
        method: "delete",
        path: "/peers/{id}",
        summary: "Disconnects a peer and stops redialing it until restart; a peer that dials us again is admitted (see POST /bans)",
        cli: "ledgerwire disconnect <id>",
        authenticated: true,
        responses: &[(200, "disconnected"), (400, "not a node ID"), (404, "not connected")],
        example: ("/peers/not-an-id", None),
    },
    Op {
        method: "get",
        path: "/bans",
        summary: "The bans in force, soonest to end first: [{id, reason, by, remaining_secs}]",
        cli: "ledgerwire bans",
        authenticated: true,
        responses: &[(200, "the bans"), (401, "missing or wrong token")],
        example: ("/bans", None),
    },
    Op {
        method: "post",
        path: "/bans",
        summary: "Disconnects a peer and refuses its connections and our dials to it: {\"id\": \"…\", \"duration\": \"1h\", \"reason\": \"…\"}; a persistent peer is dialed again when the ban ends",
        cli: "ledgerwire ban <id> --for <duration> [--reason <text>]",
        authenticated: true,
        responses: &[
            (201, "the ban now in force (a ban never shortens one in force)"),
            (400, "a bad ID, duration or reason, or our own ID"),
            (409, "10,000 operators' bans are in force"),
        ],
        example: ("/bans", Some(r#"{"id": "not-an-id", "duration": "1h"}"#)),
    },
    Op {
        method: "delete",
        path: "/bans/{id}",
        summary: "Lifts a ban; a persistent peer is dialed at once",
        cli: "ledgerwire unban <id>",
        authenticated: true,
        responses: &[(200, "unbanned"), (400, "not a node ID"), (404, "not banned")],
        example: ("/bans/not-an-id", None),
    },
    Op {
        method: "get",
        path: "/events",
        summary: "Switch, ILP and route events as server-sent events; `missed` reports events a slow reader lost",
        cli: "ledgerwire events",
        authenticated: true,
        responses: &[(200, "text/event-stream")],
        example: ("/events", None),
    },
    Op {
        method: "get",
        path: "/addrbook",
        summary: "The address book: address, source, first seen, last attempt, last success, failures",
        cli: "ledgerwire addrbook",
        authenticated: true,
        responses: &[(200, "the entries"), (404, "discovery is off (p2p.pex = false)")],
        example: ("/addrbook", None),
    },
    Op {
        method: "get",
        path: "/accounts",
        summary: "ILP accounts: relation, asset, link, source, balance, amounts in flight, counters",
        cli: "ledgerwire accounts list",
        authenticated: true,
        responses: &[(200, "the accounts")],
        example: ("/accounts", None),
    },
    Op {
        method: "post",
        path: "/accounts",
        summary: "Adds or replaces an account (the [[ilp.accounts]] fields as JSON)",
        cli: "ledgerwire accounts add <file.json>",
        authenticated: true,
        responses: &[
            (201, "added"),
            (400, "an invalid field (named)"),
            (409, "defined in config.toml, or a duplicate node ID or token"),
        ],
        example: ("/accounts", Some(r#"{"id": "bad id"}"#)),
    },
    Op {
        method: "delete",
        path: "/accounts/{id}",
        summary: "Removes an account made through the API (its balance is kept)",
        cli: "ledgerwire accounts remove <id>",
        authenticated: true,
        responses: &[(200, "removed"), (404, "no such account"), (409, "defined in config.toml")],
        example: ("/accounts/nobody", None),
    },
    Op {
        method: "get",
        path: "/accounts/{id}/balance",
        summary: "Balance (positive: they owe us), amounts in flight, asset",
        cli: "ledgerwire accounts balance <id>",
        authenticated: true,
        responses: &[(200, "the balance"), (404, "no such account")],
        example: ("/accounts/nobody/balance", None),
    },
    Op {
        method: "get",
        path: "/accounts/{id}/settlements",
        summary: "The account's settlement records (needed, outgoing, incoming)",
        cli: "ledgerwire accounts settlements <id>",
        authenticated: true,
        responses: &[(200, "the records"), (404, "no such account")],
        example: ("/accounts/nobody/settlements", None),
    },
    Op {
        method: "post",
        path: "/accounts/{id}/settlements",
        summary: "Records a settlement made outside: {\"amount\": \"100\", \"direction\": \"outgoing\"|\"incoming\", \"note\": \"…\"}",
        cli: "ledgerwire accounts settle <id> <amount> <outgoing|incoming> [--note …]",
        authenticated: true,
        responses: &[(201, "recorded"), (400, "a bad amount or direction"), (404, "no such account")],
        example: ("/accounts/nobody/settlements", Some(r#"{"amount": "5", "direction": "incoming"}"#)),
    },
    Op {
        method: "get",
        path: "/routes",
        summary: "The routing table: prefix, next hop (none: here), path, source, age",
        cli: "ledgerwire routes",
        authenticated: true,
        responses: &[(200, "the routes")],
        example: ("/routes", None),
    },
    Op {
        method: "get",
        path: "/routes/peers",
        summary: "Route exchange per account: state, epochs, updates and controls sent and received, refused, bytes",
        cli: "ledgerwire routes --peers",
        authenticated: true,
        responses: &[(200, "per account"), (404, "route exchange is off (ilp.route_broadcast = false)")],
        example: ("/routes/peers", None),
    },
];

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPS {
        let mut responses = Map::new();
        for (code, text) in op.responses {
            let content = if *code >= 400 {
                json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } })
            } else if op.path == "/events" {
                json!({ "text/event-stream": {} })
            } else {
                json!({ "application/json": {} })
            };
            responses.insert(code.to_string(), json!({ "description": text, "content": content }));
        }
        let mut operation = json!({
            "summary": op.summary,
            "responses": responses,
            "x-cli": op.cli,
            "x-example": { "path": op.example.0, "body": op.example.1 },
        });
        if !op.authenticated {
            operation["security"] = json!([]);
        }
        if op.path.contains("{id}") {
            operation["parameters"] =
                json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }]);
        }
        if op.example.1.is_some() {
            operation["requestBody"] = json!({ "required": true, "content": { "application/json": {} } });
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ledgerwire admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every route but /health and /openapi.json needs `Authorization: Bearer <token>` (config/admin_token). Every error is {\"error\": \"…\"}.",
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": { "Error": { "type": "object", "properties": { "error": { "type": "string" } }, "required": ["error"] } },
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_cli_face_an_example_and_answers() {
        let doc = document();
        let mut n = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["x-cli"].as_str().is_some_and(|c| !c.is_empty()), "{method} {path}");
                assert!(op["x-example"]["path"].as_str().is_some(), "{method} {path}");
                assert!(!op["responses"].as_object().unwrap().is_empty(), "{method} {path}");
                n += 1;
            }
        }
        assert_eq!(n, OPS.len());
    }
}
