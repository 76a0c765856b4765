"""Storage behind small interfaces: blobs (keys and bytes) and metadata records."""
