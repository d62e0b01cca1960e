"""Reading user data: tabular files (CSV with labels) and clinical-trial records (HINT/TOP
tables, the trial store's records and their training loaders)."""
