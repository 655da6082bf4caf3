"""Run folders: their format (rundir.py, the one module that names their files, statuses, columns
and keys, and through which every write into a run goes), reading them as data (listing.py), the
index of a folder of many runs (runindex.py) and the figures read off a history (history.py)."""
