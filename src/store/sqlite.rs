//! SQLite implementation of [`super::Store`] (being written).
