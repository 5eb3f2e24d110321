"""Project-wide code: settings, event names and payloads, errors that cross RPC."""
