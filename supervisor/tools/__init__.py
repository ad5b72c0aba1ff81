"""Tools around the core: simulate, the demo, and file formats for events."""
