//! Tests of the corroborate module.
