"""Thin typer wrappers, one module per subcommand; the work lives in the library modules they call."""
