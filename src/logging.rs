//! VCL_DEBUG=N -> tracing level on stderr; silent when unset or 0.
