"""The `attrgan` command line (typer): parse, call the library, print."""
