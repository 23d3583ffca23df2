"""A local multi-instance topology (``idp cluster``, ``tests/cluster``): instances behind HAProxy sharing one
PostgreSQL and one Redis, started, broken and stopped as real processes."""
