//! `slack` channel (being written).
