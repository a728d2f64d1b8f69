"""The command line: one module per verb, wired together in `app`. Only this package prints or exits."""
