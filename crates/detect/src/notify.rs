//! Notification dedup, dampening, thresholds (Suricata semantics) and correlation rules.
