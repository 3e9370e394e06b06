//! `console` channel (being written).
