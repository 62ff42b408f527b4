"""Using trained models: `facesketch predict`, the command line and the local web page."""
