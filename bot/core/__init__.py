"""The domain of zhitongche and the ports it talks through.

Pure Python: nothing else of the project and no infrastructure is imported here
(tests/unit/test_import_rules.py enforces it)."""
