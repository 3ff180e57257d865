//! Periodic reports: counts by kind and severity, top attacked hosts and sources, attacks.
