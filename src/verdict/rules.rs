//! The classification table (STUB — being written).
