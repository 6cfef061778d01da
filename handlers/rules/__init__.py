"""Pure rules, no I/O: what the desk decides from the text and values it is given alone."""
