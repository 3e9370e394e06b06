//! `teams` channel (being written).
