"""Long-running processes that sit beside an application or on a node."""
