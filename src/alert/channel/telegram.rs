//! `telegram` channel (being written).
