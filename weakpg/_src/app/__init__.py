"""The application on top of the core: the command line, run folders, sweeps, studies, plots."""
