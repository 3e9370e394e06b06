//! Alert channels, one module per receiver API (being written).
