"""Age and gender estimation pipeline: DVC stage entry points and the small modules they share."""
