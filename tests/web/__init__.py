"""The web front door: the citizen's pages, the status pages and the JSON API."""
