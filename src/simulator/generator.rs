//! Deterministic data generator (STUB).
