"""What every app may import from config: roles, API and page helpers, problem types, environment readers, the
code version. Nothing here imports an app; the composition root (settings, URLs, the problem handler) is the rest
of `config`."""
