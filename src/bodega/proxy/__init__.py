"""The use cases: project pages, the root list and the file cache. No HTTP framework here."""
