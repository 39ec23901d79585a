//! placeholder
pub mod records;
pub mod stats;
pub mod plots;
pub mod report;
pub mod cmd_hpa;
