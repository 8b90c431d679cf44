"""`redline stat`: RED and USE at a glance, from Prometheus."""
