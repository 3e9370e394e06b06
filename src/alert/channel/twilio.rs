//! `twilio` channel (being written).
