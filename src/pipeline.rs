//! pipeline (stub)
