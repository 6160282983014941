//! HTTP-level tests of the Sessions History model.
