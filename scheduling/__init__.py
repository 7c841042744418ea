"""The scheduling processes: `jobexec scheduler` claims due jobs and publishes their JobEvents,
and the sweeper inside it settles or re-dispatches runs left without a live lease."""
