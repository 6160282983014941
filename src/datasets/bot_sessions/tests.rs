//! Export tests of bot_sessions against the simulator.
