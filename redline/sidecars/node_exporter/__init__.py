"""The node exporter DaemonSet: USE metrics of the node it runs on."""
