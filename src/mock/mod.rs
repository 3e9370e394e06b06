//! The mock provider (STUB — being written).
