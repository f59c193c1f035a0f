//! A request's access line: the one log line every request leaves in every component
//! it crosses.
//!
//! With JSON logs (the default outside a terminal) the line is serialized straight
//! from its fields into the log writer ([`crate::log_writer`]), in the shape the log
//! layer gives every other line (same keys, same order, same timestamp format): the
//! line is always the same fields, and skipping the `tracing` event saves ~3.5 µs of
//! CPU a line (measured A/B, docs/performance.md; nginx's whole line costs 5-7 µs).
//! The line still obeys the level filter
//! (`LOG_LEVEL`, `RUST_LOG` with the target `platform::access_log`). Human-readable
//! logs go through `tracing` as before. Access lines are therefore not `tracing`
//! events: a layer added to the subscriber does not see them.

use serde::Serialize;
use tracing::Level;

/// The target written in the line, the one a `RUST_LOG` directive names to filter it.
const TARGET: &str = "platform::access_log";

/// One answered request, as its access line reports it.
#[derive(Debug, Clone, Copy)]
pub struct AccessLine<'a> {
    pub component: &'static str,
    pub request_id: &'a str,
    pub trace_id: &'a str,
    pub method: &'static str,
    pub route: &'a str,
    pub status: u16,
    pub latency_ms: f64,
}

/// The JSON line, keys in the log layer's order (timestamp, level, message, fields,
/// target).
#[derive(Serialize)]
struct JsonLine<'a> {
    timestamp: String,
    level: &'static str,
    message: &'static str,
    component: &'static str,
    request_id: &'a str,
    trace_id: &'a str,
    method: &'static str,
    route: &'a str,
    status: u16,
    latency_ms: f64,
    target: &'static str,
}

impl AccessLine<'_> {
    /// 5xx at warn; probes and scrapes that succeeded at debug (they arrive every few
    /// seconds from every probe and scraper); the rest at info.
    pub fn level(&self) -> Level {
        if self.status >= 500 {
            Level::WARN
        } else if is_probe(self.route) && self.status < 400 {
            Level::DEBUG
        } else {
            Level::INFO
        }
    }

    /// Writes the line, if its level is enabled.
    pub fn write(&self) {
        let level = self.level();
        // One callsite per level: `enabled!` and the events need their level at compile time.
        let enabled = match level {
            Level::WARN => tracing::enabled!(target: TARGET, Level::WARN),
            Level::DEBUG => tracing::enabled!(target: TARGET, Level::DEBUG),
            _ => tracing::enabled!(target: TARGET, Level::INFO),
        };
        if !enabled {
            return;
        }
        if crate::telemetry::writes_json() {
            crate::log_writer::write(&self.json(level));
            return;
        }
        let AccessLine {
            component,
            request_id,
            trace_id,
            method,
            route,
            status,
            latency_ms,
        } = *self;
        match level {
            Level::WARN => {
                tracing::warn!(target: TARGET, component, request_id, trace_id, method, route, status, latency_ms, "request")
            }
            Level::DEBUG => {
                tracing::debug!(target: TARGET, component, request_id, trace_id, method, route, status, latency_ms, "request")
            }
            _ => {
                tracing::info!(target: TARGET, component, request_id, trace_id, method, route, status, latency_ms, "request")
            }
        }
    }

    /// The JSON line, newline included.
    fn json(&self, level: Level) -> Vec<u8> {
        let line = JsonLine {
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            level: level.as_str(),
            message: "request",
            component: self.component,
            request_id: self.request_id,
            trace_id: self.trace_id,
            method: self.method,
            route: self.route,
            status: self.status,
            latency_ms: self.latency_ms,
            target: TARGET,
        };
        let mut bytes = Vec::with_capacity(320);
        // Serializing plain strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut bytes, &line);
        bytes.push(b'\n');
        bytes
    }
}

/// The routes of health probes and metric scrapes, whose answers are logged at debug.
fn is_probe(route: &str) -> bool {
    matches!(route, "/livez" | "/readyz" | "/metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(route: &'static str, status: u16) -> AccessLine<'static> {
        AccessLine {
            component: "estoque-service",
            request_id: "req \"quoted\" \\ id",
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            method: "GET",
            route,
            status,
            latency_ms: 0.731,
        }
    }

    #[test]
    fn the_json_line_has_the_log_layers_keys_in_its_order() {
        let bytes = line("/items/{id}", 200).json(Level::INFO);
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        let value: serde_json::Value = serde_json::from_str(text).expect("JSON");
        let keys: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        // serde_json's map is sorted; the order on the wire is the struct's.
        let order: Vec<usize> = [
            "\"timestamp\"",
            "\"level\"",
            "\"message\"",
            "\"component\"",
            "\"request_id\"",
            "\"trace_id\"",
            "\"method\"",
            "\"route\"",
            "\"status\"",
            "\"latency_ms\"",
            "\"target\"",
        ]
        .iter()
        .map(|key| text.find(key).unwrap_or(usize::MAX))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(keys.len(), 11, "{text}");
        assert_eq!(value["level"], "INFO");
        assert_eq!(value["message"], "request");
        assert_eq!(value["request_id"], "req \"quoted\" \\ id", "escaped");
        assert_eq!(value["status"], 200);
        assert_eq!(value["latency_ms"], 0.731);
        assert_eq!(value["target"], TARGET);
        let timestamp = value["timestamp"].as_str().expect("a timestamp");
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok() && timestamp.ends_with('Z'),
            "{timestamp}"
        );
        assert_eq!(timestamp.len(), "2026-12-04T02:45:50.008138Z".len());
    }

    #[test]
    fn levels_follow_the_status_and_the_route() {
        assert_eq!(line("/items", 200).level(), Level::INFO);
        assert_eq!(line("/items", 404).level(), Level::INFO);
        assert_eq!(line("/items", 503).level(), Level::WARN);
        assert_eq!(line("/readyz", 200).level(), Level::DEBUG);
        assert_eq!(line("/readyz", 404).level(), Level::INFO);
        assert_eq!(line("/readyz", 503).level(), Level::WARN);
        assert_eq!(line("/metrics", 200).level(), Level::DEBUG);
    }
}
