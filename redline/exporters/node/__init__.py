"""USE metrics of nodes: procfs/sysfs parsers and node_exporter-compatible collectors."""
