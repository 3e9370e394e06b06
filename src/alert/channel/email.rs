//! `email` channel (being written).
