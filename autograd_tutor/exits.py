"""The exit statuses of every command: the one table of them (cli, entry and the views
that end a command import these names; none writes a bare number).

Imports nothing, so the console script's entry can use it before anything else loads.
"""

EXIT_OK = 0  # done
EXIT_FAILED = 1  # failed, or stopped by the learner (q, end of input), or refused
EXIT_USAGE = 2  # the command line was wrong
EXIT_INTERRUPTED = 130  # Ctrl-C
