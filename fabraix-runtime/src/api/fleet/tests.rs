//! Tests of the shared budget against a real redis-server.
