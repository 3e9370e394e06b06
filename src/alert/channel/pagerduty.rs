//! `pagerduty` channel (being written).
