//! lab harness
