"""The web service, the command line and their settings: the top floor."""
