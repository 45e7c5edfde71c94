"""Operations: per-request bookkeeping (request id, timing), structured logs and Prometheus metrics.
A Flask adapter like the other front doors' glue; the core knows nothing of it."""
