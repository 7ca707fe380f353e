"""nnrun's built-in components. Each module is a plugin declared as an entry point of the group
`nnrun` in pyproject.toml, loaded by exactly the code path that loads a third party's plugins."""
