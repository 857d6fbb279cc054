"""The console room: what reaches the user's terminal, and what does not.

Escaped previews of program output, ``--help`` defaults, and third-party warnings sent to the
run's log file instead of the console. Imports nothing of ours.
"""
