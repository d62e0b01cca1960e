"""What every run needs underneath: run files, the run lock and run-directory memory, request
limits, the checkpointer, the event loop and the run's inference threads. Imports nothing of
clinsynth above ``config`` and ``schemas``."""
