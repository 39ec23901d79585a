//! The workload app and load generator (being built).
