"""The SQL front end: split scripts, route sqlml statements to handlers, pass the rest on."""
