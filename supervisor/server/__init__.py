"""The daemon and its HTTP surface: API, webhooks, metrics and logs."""
