//! `discord` channel (being written).
