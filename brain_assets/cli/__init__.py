"""The ``brain`` command: ``brain_assets.cli.entry:entry`` around ``brain_assets.cli.main:main``,
one module per group of subcommands."""
