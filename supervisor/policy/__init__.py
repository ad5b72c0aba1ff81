"""The rule language: facts, conditions, the durable_rules matcher, rule files and their tests."""
