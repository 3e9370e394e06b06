//! `opsgenie` channel (being written).
