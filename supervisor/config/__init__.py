"""The office's YAML: settings, contact directory, calendar overrides and templates, strictly validated."""
