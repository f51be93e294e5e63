"""LPRng's side of the drop-in: the filter command line and entry text lpd hands over."""
