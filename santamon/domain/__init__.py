"""What signals, agents and their alerts are: constants, wording and rules, with no I/O.

The HTTP layer, the jobs and every storage engine take these from here, so a second engine
never has to copy an alert's wording.
"""
