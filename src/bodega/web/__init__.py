"""The HTTP edge: routing, negotiation headers, errors to statuses."""
