"""The JSON API front door: thin adapters from HTTP to the core and back."""
