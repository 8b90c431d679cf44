"""The demo: an app with realistic routes, a load generator, the local topology of every part
and the live screen (`redline demo`)."""
