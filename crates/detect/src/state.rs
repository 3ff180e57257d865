//! Alarms from state: resource usage, interface and session-table state, silent NSFs and exporters.
