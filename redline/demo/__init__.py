"""The demo: an app with realistic routes, a load generator, and (later) the local topology."""
