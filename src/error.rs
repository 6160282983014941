//! error (stub)
