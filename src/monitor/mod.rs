//! Monitoring: the scheduler, the per-monitor state machines, incidents and the health view.

pub mod machine;
