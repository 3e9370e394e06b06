//! `webhook` channel (being written).
