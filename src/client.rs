//! client (stub)
