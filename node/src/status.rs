//! `shoal status`: the ring of a running node, printed like `nodetool status`, from the
//! node's admin endpoint (`GET /ring`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// Options of `shoal status`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "shoal status",
    about = "Print the cluster ring as a running node sees it, like `nodetool status`"
)]
pub struct StatusArgs {
    /// Host of the node's admin HTTP endpoint.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Admin HTTP port of the node.
    #[arg(long, default_value_t = 8080)]
    pub admin_port: u16,
    /// Show ownership effective for this keyspace's replication.
    pub keyspace: Option<String>,
}

/// GETs `path` from `host:port` (HTTP/1.0, body up to the close); returns status and body.
pub fn http_get(host: &str, port: u16, path: &str) -> Result<(u16, String), String> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port} resolves to nothing"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot reach the admin endpoint {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("malformed HTTP status line")?;
    Ok((code, body.to_string()))
}

/// Fetches `/ring` and renders it.
pub fn run(args: &StatusArgs) -> Result<String, String> {
    let path = match &args.keyspace {
        Some(ks) => format!("/ring?keyspace={}", percent_encode(ks)),
        None => "/ring".to_string(),
    };
    let (code, body) = http_get(&args.host, args.admin_port, &path)?;
    let json: Value = serde_json::from_str(&body)
        .map_err(|_| format!("HTTP {code} from {}: {}", args.host, body.trim()))?;
    if code != 200 {
        let msg = json["error"].as_str().unwrap_or(body.trim()).to_string();
        return Err(msg);
    }
    render(&json)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Bytes as `nodetool` prints loads (`FileUtils.stringifyFileSize`).
pub fn format_load(bytes: u64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("TiB", 1099511627776.0),
        ("GiB", 1073741824.0),
        ("MiB", 1048576.0),
        ("KiB", 1024.0),
    ];
    let b = bytes as f64;
    for (unit, size) in UNITS {
        if b >= size {
            return format!("{:.2} {unit}", b / size);
        }
    }
    format!("{bytes} bytes")
}

/// Renders `/ring` JSON as `nodetool status` does: one table per data center.
pub fn render(ring: &Value) -> Result<String, String> {
    let nodes = ring["nodes"].as_array().ok_or("no nodes in /ring answer")?;
    let effective = ring["effective"].as_bool().unwrap_or(false);
    let mut by_dc: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for n in nodes {
        let dc = n["dc"].as_str().unwrap_or("?").to_string();
        by_dc.entry(dc).or_default().push(n);
    }
    let mut out = String::new();
    for (i, (dc, mut members)) in by_dc.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        members.sort_by_key(|n| n["address"].as_str().and_then(|a| a.parse::<IpAddr>().ok()));
        let header = format!("Datacenter: {dc}");
        out.push_str(&header);
        out.push('\n');
        out.push_str(&"=".repeat(header.len()));
        out.push('\n');
        out.push_str("Status=Up/Down\n|/ State=Normal/Leaving/Joining/Moving\n");
        let mut rows: Vec<[String; 7]> = vec![[
            "--".into(),
            "Address".into(),
            "Load".into(),
            "Tokens".into(),
            if effective {
                "Owns (effective)"
            } else {
                "Owns"
            }
            .into(),
            "Host ID".into(),
            "Rack".into(),
        ]];
        for n in members {
            let status = match n["status"].as_str() {
                Some("Up") => 'U',
                _ => 'D',
            };
            let state = n["state"]
                .as_str()
                .and_then(|s| s.chars().next())
                .unwrap_or('?');
            rows.push([
                format!("{status}{state}"),
                n["address"].as_str().unwrap_or("?").to_string(),
                n["load"]
                    .as_u64()
                    .map(format_load)
                    .unwrap_or_else(|| "?".into()),
                n["tokens"].as_u64().unwrap_or(0).to_string(),
                n["owns"]
                    .as_f64()
                    .map(|o| format!("{:.1}%", o * 100.0))
                    .unwrap_or_else(|| "?".into()),
                n["host_id"].as_str().unwrap_or("?").to_string(),
                n["rack"].as_str().unwrap_or("?").to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..7)
            .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_nodetool_status() {
        let ring = serde_json::json!({
            "keyspace": null,
            "effective": false,
            "nodes": [
                {"host_id": "bbbbbbbb-0000-0000-0000-000000000002", "address": "127.0.0.10",
                 "dc": "dc1", "rack": "r1", "status": "Down", "state": "Normal", "tokens": 16,
                 "owns": 0.25, "load": null},
                {"host_id": "aaaaaaaa-0000-0000-0000-000000000001", "address": "127.0.0.9",
                 "dc": "dc1", "rack": "r1", "status": "Up", "state": "Normal", "tokens": 16,
                 "owns": 0.75, "load": 2048},
                {"host_id": "cccccccc-0000-0000-0000-000000000003", "address": "127.0.0.11",
                 "dc": "dc2", "rack": "r2", "status": "Up", "state": "Joining", "tokens": 16,
                 "owns": null, "load": 10},
            ]
        });
        let text = render(&ring).unwrap();
        let expected = "\
Datacenter: dc1
===============
Status=Up/Down
|/ State=Normal/Leaving/Joining/Moving
--  Address     Load      Tokens  Owns   Host ID                               Rack
UN  127.0.0.9   2.00 KiB  16      75.0%  aaaaaaaa-0000-0000-0000-000000000001  r1
DN  127.0.0.10  ?         16      25.0%  bbbbbbbb-0000-0000-0000-000000000002  r1

Datacenter: dc2
===============
Status=Up/Down
|/ State=Normal/Leaving/Joining/Moving
--  Address     Load      Tokens  Owns  Host ID                               Rack
UJ  127.0.0.11  10 bytes  16      ?     cccccccc-0000-0000-0000-000000000003  r2
";
        assert_eq!(text, expected);
        let mut eff = ring.clone();
        eff["effective"] = true.into();
        assert!(render(&eff).unwrap().contains("Owns (effective)"));
        assert_eq!(format_load(1536 * 1024), "1.50 MiB");
        assert_eq!(percent_encode("a b"), "a%20b");
    }
}
