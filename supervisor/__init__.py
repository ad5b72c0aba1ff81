"""hotline-supervisor: supervises 12345 hotline work orders against YAML rules on a Chinese working-time clock."""
